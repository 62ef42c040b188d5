"""The one training loop every torch sequence model shares.

Training data are windows of each user's sequence: inputs are the actions, targets the action that
follows each input (0 where no loss is taken). Every position of a window is a next-action
prediction from the prefix ending there, so one pass over the windows trains on every prefix of
every sequence, like a prefix-per-example loader but without re-encoding the same prefix 50 times.

Loss is cross-entropy over the full vocabulary; optimisation is Adam; after each epoch the model is
scored on the validation examples (NDCG@10, full ranking) and the best weights are kept. Training
stops after `patience` epochs without improvement. Seeds fix the initialisation and the batch order.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ModelError
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
                  progress: ProgressReporter | None = None) -> TrainingRecord:
    """Optimise `network` on `windows`; keep the weights of the best validation epoch.

    `loss_fn(batch)` returns the mean cross-entropy of a batch dict with tensors "inputs" [B, L],
    "targets" [B, L] and "context" [B, L, C]. `validate()` returns validation NDCG@10 with the
    network in eval mode. Without validation every epoch runs and the last weights are kept.
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
    epochs_without_gain = 0
    training_started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
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
        entry = {"epoch": float(epoch), "loss": total_loss / n_batches, "train_seconds": time.perf_counter() - started}
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
        if progress is not None:
            progress(epoch, config.epochs, entry)
        if epochs_without_gain >= config.patience:
            break
        if config.max_train_seconds is not None and time.perf_counter() - training_started > config.max_train_seconds:
            record.stopped_by_time = True
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return record
