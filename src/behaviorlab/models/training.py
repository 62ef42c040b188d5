"""The one training loop every torch model shares (`train_network`), and the sequence models' training windows.

`train_network` is mini-batch Adam over tensors with aligned rows and a model's own `loss_fn(batch)`. After
each epoch `validation.score()` judges the weights on validation data only (NDCG@10 for the sequence
models, the validation loss for the feature-table models) and the best epoch's weights are kept.
Training stops after `patience` epochs without improvement, but not before `min_steps` optimiser
steps: with little data an epoch is one or two steps, and five noisy validation scores in a row then
stopped a model that had barely started (SmartThings FR at 5% of its users: NDCG@10 0.73 +/- 0.06 over
seeds, while training the same model a second time gave 0.85 +/- 0.01); or after the epoch that
crosses the time budget. Seeds fix the initialisation and the batch order. The loop's state between
epochs is a `TrainingRecord` plus the weights, the optimiser and the generators; with a checkpoint it
is saved after every epoch, and a run of the same identity continues from the epoch after it, ending
with the weights an uninterrupted run computes.

The sequence models train on windows of each user's sequence: inputs are the actions, targets the
action that follows each input (0 where no loss is taken). Every position of a window is a next-action
prediction from the prefix ending there, so one pass over the windows trains on every prefix of every
sequence, like a prefix-per-example loader but without re-encoding the same prefix 50 times; the loss
over those positions is the model's objective (losses.py: the full softmax, or a sampled one for large
catalogs).

The settings (settings.py) are torch-free; this module imports torch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from behaviorlab.errors import ModelError
from behaviorlab.models.loss_settings import LossSettings
from behaviorlab.models.settings import TrainSettings
from behaviorlab.progress import no_progress

if TYPE_CHECKING:
    from behaviorlab.models.checkpoint import Checkpoint
    from behaviorlab.progress import ProgressReporter


class NeuralConfig(TrainSettings, LossSettings):
    """Settings shared by the torch sequence models; each model's config adds its architecture.

    The objective (full or sampled softmax, bpr, bce, gbce and their negatives) is LossSettings'.

    The training settings are TrainSettings' defaults; here a batch is `batch_size` windows (each holding up to
    max_len predictions) and patience counts epochs without a better validation NDCG@10."""

    max_len: int = Field(50, ge=1)  # how many past actions the model reads
    embedding_dim: int = Field(64, ge=2)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    window_stride: int | None = Field(None, ge=1)  # default max_len // 2: each target sees >= that much history
    text_init: Literal["none", "frozen", "finetune"] = "none"  # action embeddings from MiniLM descriptions
    context_columns: tuple[str, ...] = ()  # extras of the target event used as extra embeddings
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
    """Where a training run is: what the epochs gave, the best one, and what decides the next stop.

    With the weights, the optimiser and the generators it is everything the next epoch depends on, so it
    is the loop's checkpointed state; once training ends it is the run's report."""

    epochs: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, validation score, seconds
    best_epoch: int = 0  # 1-based; without validation, the last epoch
    best_valid: float | None = None
    epochs_without_gain: int = 0
    train_seconds: float = 0.0  # the training time of every call of the run, not the time between them
    stopped_by_time: bool = False

    @property
    def epoch(self) -> int:
        """Epochs finished."""
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, entry: dict[str, float], validation: Validation | None, train_seconds: float) -> bool:
        """Record a finished epoch; whether it is the best so far (without validation, every epoch is)."""
        self.epochs.append(entry)
        self.train_seconds = train_seconds
        gain = validation is None or validation.improves(entry[validation.metric], self.best_valid)
        self.epochs_without_gain = 0 if gain else self.epochs_without_gain + 1
        if gain:
            self.best_epoch = self.epoch
            self.best_valid = None if validation is None else entry[validation.metric]
        return gain

    def judge(self, settings: TrainSettings, steps_per_epoch: int) -> bool:
        """Whether the run stops now, by patience (after min_steps) or by its time budget."""
        patient = self.epochs_without_gain >= settings.patience and self.epoch * steps_per_epoch >= settings.min_steps
        out_of_time = settings.max_train_seconds is not None and self.train_seconds > settings.max_train_seconds
        self.stopped_by_time = out_of_time and not patient
        return patient or out_of_time


@dataclass(frozen=True)
class Validation:
    """How the loop judges an epoch, on validation data only: `score()`, run with the network in eval
    mode and without gradients, named `metric` in the record."""

    score: Callable[[], float]
    metric: str
    higher_is_better: bool

    def improves(self, value: float, best: float | None) -> bool:
        return best is None or (value > best if self.higher_is_better else value < best)


LossFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]  # a batch (name -> rows of each tensor) -> scalar loss


def train_network(network: nn.Module, loss_fn: LossFn, data: Mapping[str, torch.Tensor], settings: TrainSettings,
                  seed: int, validation: Validation | None = None, progress: ProgressReporter | None = None,
                  checkpoint: Checkpoint | None = None) -> TrainingRecord:
    """Optimise `network` on `data` (tensors with aligned rows); keep the weights of the best validation epoch.

    `loss_fn(batch)` returns the mean loss of a batch: `data`'s tensors at the same rows, on the device.
    `seed` orders the batches (the caller seeds the initial weights). Without validation every epoch runs
    and the last weights are kept. With `checkpoint` the loop's state is saved after every epoch, before
    `progress` hears of it, and a state found there is resumed from the epoch after it; stopping is judged
    again with this call's settings, so a larger budget continues a stopped run, and a run that had already
    stopped returns its best weights without training.
    """
    device = resolve_device(settings.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    network.to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    rows = len(next(iter(data.values())))
    steps_per_epoch = math.ceil(rows / settings.batch_size)
    saved = checkpoint.load() if checkpoint is not None else None
    record, best_state = _restore(saved, network, optimizer, generator, device) if saved else (TrainingRecord(), None)
    stopped, clock = record.judge(settings, steps_per_epoch), time.perf_counter() - record.train_seconds
    while not stopped and record.epoch < settings.epochs:
        started = time.perf_counter()
        loss = _epoch(network, loss_fn, data, optimizer, generator, settings.batch_size, device)
        entry = {"epoch": record.epoch + 1, "loss": loss, "train_seconds": time.perf_counter() - started}
        if validation is not None:
            network.eval()
            with torch.no_grad():
                entry[validation.metric] = validation.score()
        if record.add(entry, validation, time.perf_counter() - clock) and validation is not None:
            best_state = copy.deepcopy(network.state_dict())
        stopped = record.judge(settings, steps_per_epoch)
        if checkpoint is not None:
            checkpoint.save(_loop_state(network, optimizer, generator, device, record, best_state))
        (progress or no_progress)(record.epoch, settings.epochs, entry)
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return record


def _epoch(network: nn.Module, loss_fn: LossFn, data: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
           generator: torch.Generator, batch_size: int, device: torch.device) -> float:
    """One pass over `data` in a random order of batches; the mean of the batches' losses."""
    network.train()
    rows = len(next(iter(data.values())))
    order = torch.randperm(rows, generator=generator)
    losses = []
    for start in range(0, rows, batch_size):
        picked = order[start:start + batch_size]
        loss = loss_fn({name: tensor[picked].to(device, non_blocking=True) for name, tensor in data.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return sum(losses) / len(losses)


def mean_loss(loss_fn: LossFn, data: Mapping[str, torch.Tensor], batch_size: int, device: torch.device) -> float:
    """The loss over all rows of `data` (batch losses weighted by their rows), without gradients."""
    rows = len(next(iter(data.values())))
    total = 0.0
    with torch.no_grad():
        for start in range(0, rows, batch_size):
            batch = {name: tensor[start:start + batch_size].to(device) for name, tensor in data.items()}
            total += float(loss_fn(batch)) * len(next(iter(batch.values())))
    return total / max(rows, 1)


def loss_validation(loss_fn: LossFn, data: Mapping[str, torch.Tensor], settings: TrainSettings) -> Validation:
    """Judge each epoch by the loss over validation tensors `data` (lower is better), as the feature-table models do."""
    device = resolve_device(settings.device)
    return Validation(lambda: mean_loss(loss_fn, data, settings.batch_size, device), metric="valid_loss",
                      higher_is_better=False)


def predict_batched(network: nn.Module, inputs: Sequence[torch.Tensor], batch_size: int = 4096) -> torch.Tensor:
    """network(*inputs) over row batches on the network's device, concatenated on the CPU, without gradients."""
    device = next(network.parameters()).device
    network.eval()
    n = inputs[0].shape[0]
    with torch.no_grad():
        parts = [network(*(tensor[start:start + batch_size].to(device) for tensor in inputs)).cpu()
                 for start in range(0, n, batch_size)]
    return torch.cat(parts) if parts else network(*(tensor.to(device) for tensor in inputs)).cpu()


def _loop_state(network: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator, device: torch.device,
                record: TrainingRecord, best_state: dict[str, torch.Tensor] | None) -> dict[str, Any]:
    """Everything the epochs after `record.epoch` depend on, as tensors and plain values (a checkpoint's state)."""
    return {
        "network": network.state_dict(),
        "optimizer": optimizer.state_dict(),  # Adam's moments and step counts
        "batch_order_rng": generator.get_state(),
        "torch_rng": torch.get_rng_state(),  # dropout draws from torch's global generator
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "record": record.to_dict(),
        "best_state": best_state,
    }


def _restore(saved: Mapping[str, Any], network: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
             device: torch.device) -> tuple[TrainingRecord, dict[str, torch.Tensor] | None]:
    """Put back what `_loop_state` saved; the record and the best weights so far."""
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    generator.set_state(saved["batch_order_rng"])
    torch.set_rng_state(saved["torch_rng"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"], device)
    return TrainingRecord(**saved["record"]), saved["best_state"]
