"""The one training loop every torch sequence model shares.

Training data are windows of each user's sequence: inputs are the actions, targets the action that
follows each input (0 where no loss is taken). Every position of a window is a next-action
prediction from the prefix ending there, so one pass over the windows trains on every prefix of
every sequence, like a prefix-per-example loader but without re-encoding the same prefix 50 times.

Loss is cross-entropy over the full vocabulary; optimisation is Adam; after each epoch the model is
scored on the validation examples (NDCG@10, full ranking) and the best weights are kept. Training
stops after `patience` epochs without improvement, but not before `min_steps` optimiser steps: with little
data an epoch is one or two steps, and five noisy validation scores in a row then stopped a model that
had barely started (SmartThings FR at 5% of its users: NDCG@10 0.73 +/- 0.06 over seeds, while training
the same model a second time gave 0.85 +/- 0.01). Seeds fix the initialisation and the batch order.

With a checkpoint, the loop saves its whole state after every epoch and, when the checkpoint already
holds a state of the same run, continues from the epoch after it; the result is the one an
uninterrupted run computes.

Torch is imported inside the functions, so importing this module (and the model configs) stays light.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ModelError

if TYPE_CHECKING:
    from behaviorlab.models.checkpoint import Checkpoint
    from behaviorlab.progress import ProgressReporter


class NeuralConfig(StrictConfig):
    """Settings shared by the torch models; each model's config adds its architecture."""

    max_len: int = Field(50, ge=1)  # how many past actions the model reads
    embedding_dim: int = Field(64, ge=2)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)  # windows per batch (each window holds up to max_len predictions)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(10, ge=1)  # epochs without a better validation NDCG@10 before stopping
    min_steps: int = Field(100, ge=0)  # optimiser steps before patience may stop a run (`epochs` still caps it)
    max_train_seconds: float | None = Field(None, gt=0)  # stop after the epoch that crosses this budget
    window_stride: int | None = Field(None, ge=1)  # default max_len // 2: each target sees >= that much history
    text_init: Literal["none", "frozen", "finetune"] = "none"  # action embeddings from MiniLM descriptions
    context_columns: tuple[str, ...] = ()  # extras of the target event used as extra embeddings
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)  # torch.set_num_threads; None leaves torch's default
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class Windows:
    """Training windows: inputs [W, L], targets [W, L] (0 = no loss), target context [W, L, C]."""

    inputs: np.ndarray
    targets: np.ndarray
    context: np.ndarray

    def __len__(self) -> int:
        return self.inputs.shape[0]


def make_windows(sequences: Sequence[np.ndarray], contexts: Sequence[np.ndarray], max_len: int,
                 stride: int | None = None) -> Windows:
    """Cut each sequence of action ids into left-padded windows that cover every target once.

    For a sequence s (n ids) the input/target pairs are (s[i], s[i+1]), i = 0..n-2. Windows end at
    e = n-2, n-2-stride, ...; a window takes loss on its last `stride` positions (the earliest
    window on all of its positions), so each target is predicted once, from at least
    max_len - stride previous actions whenever the sequence has them. `contexts[u]` holds the
    context ids [n, C] of sequence u's events; a target's context is that of the target event.
    """
    stride = stride or max(1, max_len // 2)
    if stride > max_len:
        raise ModelError(f"window_stride ({stride}) must not exceed max_len ({max_len})")
    n_context = contexts[0].shape[1] if contexts else 0
    inputs, targets, context = [], [], []
    for ids, ctx in zip(sequences, contexts, strict=True):
        last = len(ids) - 2  # index of the last input that has a target
        end = last
        while end >= 0:
            start = max(0, end - max_len + 1)
            loss_from = start if start == 0 else end - stride + 1
            width = end - start + 1
            window_in = np.zeros(max_len, dtype=np.int64)
            window_target = np.zeros(max_len, dtype=np.int64)
            window_ctx = np.zeros((max_len, n_context), dtype=np.int64)
            window_in[max_len - width:] = ids[start:end + 1]
            targets_here = ids[start + 1:end + 2].copy()
            targets_here[: loss_from - start] = 0  # positions already covered by a later window
            window_target[max_len - width:] = targets_here
            window_ctx[max_len - width:] = ctx[start + 1:end + 2]
            inputs.append(window_in)
            targets.append(window_target)
            context.append(window_ctx)
            if start == 0:
                break
            end -= stride
    if not inputs:
        raise ModelError("No training pairs: every sequence has fewer than 2 events",
                         hint="Train on a log whose users have at least two events each.")
    return Windows(np.stack(inputs), np.stack(targets), np.stack(context))


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("device='cuda' was asked for but no CUDA device is available", hint="Use device='auto' or 'cpu'.")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


@dataclass
class TrainingRecord:
    """What happened during training, for reports: per-epoch loss, validation score and time."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_ndcg10: float | None = None
    stopped_by_time: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch, "best_valid_ndcg10": self.best_valid_ndcg10,
                "stopped_by_time": self.stopped_by_time}


def train_network(network: nn.Module, loss_fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], windows: Windows,
                  config: NeuralConfig, device: torch.device, validate: Callable[[], float] | None,
                  progress: ProgressReporter | None = None, checkpoint: Checkpoint | None = None) -> TrainingRecord:
    """Optimise `network` on `windows`; keep the weights of the best validation epoch.

    `loss_fn(batch)` returns the mean cross-entropy of a batch dict with tensors "inputs" [B, L],
    "targets" [B, L] and "context" [B, L, C]. `validate()` returns validation NDCG@10 with the
    network in eval mode. Without validation every epoch runs and the last weights are kept.

    With `checkpoint`, the loop's state is saved after every epoch, before `progress` hears of it, and
    a state found there is resumed from the epoch after it (see `_loop_state`); a checkpoint of a run
    that had already stopped returns its best weights without training. `max_train_seconds` counts
    the training time of every call of the run, not the time between them.
    """
    generator = torch.Generator().manual_seed(config.seed)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    tensors = {
        "inputs": torch.from_numpy(windows.inputs),
        "targets": torch.from_numpy(windows.targets),
        "context": torch.from_numpy(windows.context),
    }
    n_batches = math.ceil(len(windows) / config.batch_size)
    record = TrainingRecord()
    best_state: dict[str, torch.Tensor] | None = None
    epochs_without_gain, epoch, seconds_before, stopped = 0, 0, 0.0, False
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["batch_order_rng"])
        torch.set_rng_state(saved["torch_rng"])  # dropout draws from torch's global generator
        if device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
        record = TrainingRecord(**saved["record"])
        best_state = saved["best_state"]
        epochs_without_gain, epoch = saved["epochs_without_gain"], saved["epoch"]
        seconds_before = saved["train_seconds"]
        # stopping is judged again with this call's settings, so a larger budget continues a stopped run
        out_of_time = config.max_train_seconds is not None and seconds_before > config.max_train_seconds
        patient = epochs_without_gain >= config.patience and epoch * n_batches >= config.min_steps
        stopped = patient or out_of_time
        record.stopped_by_time = out_of_time and not patient
    training_started = time.perf_counter() - seconds_before
    while not stopped and epoch < config.epochs:
        epoch += 1
        started = time.perf_counter()
        network.train()
        order = torch.randperm(len(windows), generator=generator)
        total_loss = 0.0
        for b in range(n_batches):
            rows = order[b * config.batch_size:(b + 1) * config.batch_size]
            batch = {name: tensor[rows].to(device, non_blocking=True) for name, tensor in tensors.items()}
            loss = loss_fn(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach())
        entry = {"epoch": epoch, "loss": total_loss / n_batches, "train_seconds": time.perf_counter() - started}
        if validate is not None:
            network.eval()
            with torch.no_grad():
                entry["valid_ndcg10"] = validate()
            if record.best_valid_ndcg10 is None or entry["valid_ndcg10"] > record.best_valid_ndcg10:
                record.best_valid_ndcg10 = entry["valid_ndcg10"]
                record.best_epoch = epoch
                best_state = copy.deepcopy(network.state_dict())
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
        else:
            record.best_epoch = epoch
        record.epochs.append(entry)
        train_seconds = time.perf_counter() - training_started
        if epochs_without_gain >= config.patience and epoch * n_batches >= config.min_steps:
            stopped = True
        elif config.max_train_seconds is not None and train_seconds > config.max_train_seconds:
            record.stopped_by_time = stopped = True
        if checkpoint is not None:
            checkpoint.save(_loop_state(network, optimizer, generator, device, epoch, record, best_state,
                                        epochs_without_gain, train_seconds))
        if progress is not None:
            progress(epoch, config.epochs, entry)
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return record


def _loop_state(network: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, device: torch.device,
                epoch: int, record: TrainingRecord, best_state: dict[str, torch.Tensor] | None,
                epochs_without_gain: int, train_seconds: float) -> dict[str, Any]:
    """Everything the epochs after `epoch` depend on, as tensors and plain values (a checkpoint's state)."""
    return {
        "epoch": epoch,  # epochs finished
        "network": network.state_dict(),
        "optimizer": optimizer.state_dict(),  # Adam's moments and step counts
        "batch_order_rng": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "record": record.to_dict(),
        "best_state": best_state,
        "epochs_without_gain": epochs_without_gain,
        "train_seconds": train_seconds,
    }
