"""The one training loop every torch model shares (`train_network`), and the sequence models' training windows.

`train_network` is mini-batch Adam over tensors with aligned rows and a model's own `loss_fn(batch)`. After
each epoch `validation.score()` judges the weights on validation data only (NDCG@10 for the sequence
models, the validation loss for the feature-table models) and the best epoch's weights are kept (on a tie,
the later epoch's). Training stops after `patience` epochs without improvement (more once the best epoch
is late: `TrainSettings.patience_after`), but not before
`min_epochs` epochs and `min_steps` optimiser steps: with little data an epoch is one or two steps, and
five noisy validation scores in a row then stopped a model that had barely started (SmartThings FR at 5%
of its users: NDCG@10 0.73 +/- 0.06 over seeds, while training the same model a second time gave
0.85 +/- 0.01); or at the first batch past the time budget. Seeds fix the initialisation and the batch
order. The loop's state is a `TrainingRecord` and, inside an epoch, an `EpochPosition`, plus the weights,
the optimiser and the generators; with a checkpoint it is saved after every epoch, every
`checkpoint_seconds` inside one and when the budget runs out, and a run of the same identity continues
at the batch after it, ending with the weights an uninterrupted run computes. The record's `warnings`
say when the kept weights may fall short (best epoch last, few validation examples); the sequence models add
the Markov baseline's score and, below it, the cause (baseline_check.py).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    # After a fit with validation, fit the Markov model on the same split and compare (baseline_check.py): off
    # saves that fit (seconds even on Amazon Beauty), at the cost of the log's word on a model below it.
    markov_baseline: bool = True
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

    With the weights, the optimiser, the generators and the position inside an epoch it is everything the
    next batch depends on, so it is the loop's checkpointed state; once training ends it is the run's report."""

    epochs: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, validation score, seconds
    best_epoch: int = 0  # 1-based; without validation, the last epoch
    best_valid: float | None = None
    epochs_without_gain: int = 0
    train_seconds: float = 0.0  # the training time of every call of the run, not the time between them
    stopped_by_time: bool = False
    warnings: list[str] = field(default_factory=list)  # why the kept weights may not be what the data allows
    baseline_valid: float | None = None  # the Markov model's validation score on the same split (baseline_check.py)
    baseline_seconds: float | None = None  # what fitting and scoring that baseline cost
    popularity_valid: float | None = None  # the popularity model's, fitted when the model is below the baseline

    @property
    def epoch(self) -> int:
        """Epochs finished."""
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, entry: dict[str, float], validation: Validation | None) -> bool:
        """Record a finished epoch; whether its weights are now the ones kept (without validation, every epoch's).

        Only a better score resets patience, but a tie keeps the later weights: on a small validation set
        scores tie for epochs on end (Kasteren, 3 validation examples: GRU4Rec's NDCG@10 stayed at 0.544 from
        epoch 1 to 7, then rose to 0.877 at epoch 9), and the later weights have trained longer for the same score."""
        self.epochs.append(entry)
        value = None if validation is None else entry[validation.metric]
        gain = validation is None or validation.improves(value, self.best_valid)
        self.epochs_without_gain = 0 if gain else self.epochs_without_gain + 1
        kept = gain or value == self.best_valid
        if kept:
            self.best_epoch, self.best_valid = self.epoch, value
        return kept

    def judge(self, settings: TrainSettings, steps_per_epoch: int) -> bool:
        """Whether the run stops now, by patience (after min_epochs and min_steps) or by its time budget."""
        patient = (self.patience_ran_out(settings) and self.epoch >= settings.min_epochs
                   and self.epoch * steps_per_epoch >= settings.min_steps)
        self.stopped_by_time = self.out_of_time(settings) and not patient
        return patient or self.stopped_by_time

    def patience_ran_out(self, settings: TrainSettings) -> bool:
        """Whether the epochs since the best one are enough for patience to stop the run (min_epochs aside)."""
        return self.epochs_without_gain >= settings.patience_after(self.best_epoch)

    def out_of_time(self, settings: TrainSettings) -> bool:
        return settings.max_train_seconds is not None and self.train_seconds > settings.max_train_seconds


@dataclass
class EpochPosition:
    """Where the loop is inside an epoch; saved with the record by a mid-epoch checkpoint.

    The batch order is drawn from `order_rng`, the batch-order generator's state before this epoch's
    randperm, so a resumed epoch draws the same order again and goes on after the `batches` done."""

    order_rng: torch.Tensor  # uint8 [generator state size]
    batches: int = 0  # optimiser steps done in this epoch
    loss_sum: float = 0.0  # the sum of their batch losses
    seconds: float = 0.0  # their training time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Validation:
    """How the loop judges an epoch, on validation data only: `score()`, run with the network in eval
    mode and without gradients, named `metric` in the record."""

    score: Callable[[], float]
    metric: str
    higher_is_better: bool
    examples: int | None = None  # how many validation examples the score averages, when it is an average

    def improves(self, value: float, best: float | None) -> bool:
        return best is None or (value > best if self.higher_is_better else value < best)


LossFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]  # a batch (name -> rows of each tensor) -> scalar loss
REPORT_SECONDS = 5.0  # inside an epoch, progress hears of the first batch of a call, then at most this often
FEW_VALIDATION_EXAMPLES = 100  # below this, one example moves a mean ranking score by over 0.01: a noisy choice


def train_network(network: nn.Module, loss_fn: LossFn, data: Mapping[str, torch.Tensor], settings: TrainSettings,
                  seed: int, validation: Validation | None = None, progress: ProgressReporter | None = None,
                  checkpoint: Checkpoint | None = None, lengths: torch.Tensor | None = None) -> TrainingRecord:
    """Optimise `network` on `data` (tensors with aligned rows); keep the weights of the best validation epoch.

    `loss_fn(batch)` returns the mean loss of a batch: `data`'s tensors at the same rows, on the device.
    `seed` orders the batches (the caller seeds the initial weights). Without validation every epoch runs
    and the last weights are kept. The time budget is checked after every batch. `progress(epochs done,
    epochs, info)` hears of each finished epoch (info: its record entry) and, inside an epoch, of the start of
    this call's first batch (info with "batch", the batches done, "batches" and "rows"), of that batch and then
    one batch every REPORT_SECONDS (info with "batch", "batches", "examples_per_s" and "eta_seconds", the
    epoch's remaining time). With `checkpoint` the loop's state is saved after every
    epoch (before `progress` hears of it), inside an epoch every `checkpoint_seconds`, and when the budget
    runs out; a state found there is resumed at the batch after it. Stopping is judged again with this
    call's settings, so a larger budget continues a stopped run, and a run that had already stopped returns
    its best weights without training. A resumed run ends with the weights an uninterrupted run computes.
    With `lengths` (int64 [rows], e.g. each window's real events) a batch holds rows of similar length
    (`length_bucketed`), so a `loss_fn` that drops all-padding columns computes far less.
    """
    run = _Run.start(network, data, settings, seed, checkpoint)
    record, report = run.record, progress or no_progress
    stopped = record.judge(settings, run.steps_per_epoch)
    while not stopped and record.epoch < settings.epochs:
        position = run.position = run.position or EpochPosition(run.generator.get_state())
        if run.reported_at is None:  # before this call's first batch, which may take seconds on a large catalog
            report(record.epoch, settings.epochs, {"epoch": record.epoch + 1, "batch": position.batches,
                                                   "batches": run.steps_per_epoch, "rows": run.rows})
        for _ in _batches(network, loss_fn, data, run, position, lengths):  # steps `position` batch by batch
            record.train_seconds = run.clock()
            stopped = record.stopped_by_time = record.out_of_time(settings)
            if stopped or run.checkpoint_due():
                run.save()
            run.report_batch(report, position)
            if stopped:
                break
        else:  # the epoch ran to its end
            entry = {"epoch": record.epoch + 1, "loss": position.loss_sum / position.batches,
                     "train_seconds": position.seconds}
            if validation is not None:
                entry[validation.metric] = _validate(network, validation)
            if record.add(entry, validation) and validation is not None:
                run.best_state = copy.deepcopy(network.state_dict())
            record.train_seconds, run.position = run.clock(), None
            stopped = record.judge(settings, run.steps_per_epoch)
            run.save()
            report(record.epoch, settings.epochs, entry)
    record.warnings = _warnings(record, settings, validation, run)
    return run.finish()


def _warnings(record: TrainingRecord, settings: TrainSettings, validation: Validation | None, run: _Run) -> list[str]:
    """What the training log should say when the kept weights may be short of what the data allows."""
    warnings = []
    if run.position is not None and record.epoch == 0:
        warnings.append(f"the time budget ran out inside epoch 1 (batch {run.position.batches:,} of "
                        f"{run.steps_per_epoch:,}): the weights were never validated; resume with a larger budget")
    elif validation is not None and record.epoch and not record.patience_ran_out(settings):  # ended by budget or cap
        ended = "time budget" if record.stopped_by_time else "epoch cap"
        warnings.append(f"training ended by its {ended} at epoch {record.epoch}, {record.epochs_without_gain} after "
                        f"the best one ({record.best_epoch}) and before patience ({settings.patience_after(record.best_epoch)}) "
                        "judged it done: "
                        "the model may be undertrained; more epochs or a larger time budget may still help")
    few = validation is not None and validation.examples is not None and validation.examples < FEW_VALIDATION_EXAMPLES
    if few and record.epoch:
        warnings.append(f"only {validation.examples} validation examples chose epoch {record.best_epoch}: one example "
                        f"moves {validation.metric} by up to {1 / max(validation.examples, 1):.2f}, so the choice is "
                        "noisy; a split with more validation examples gives a firmer one")
    return warnings


def _validate(network: nn.Module, validation: Validation) -> float:
    network.eval()
    with torch.no_grad():
        return validation.score()


def _batches(network: nn.Module, loss_fn: LossFn, data: Mapping[str, torch.Tensor], run: _Run,
             position: EpochPosition, lengths: torch.Tensor | None) -> Iterator[EpochPosition]:
    """The rest of the epoch at `position`, in a random order of batches: one optimiser step per batch,
    yielding the updated position after each."""
    network.train()
    rows = len(next(iter(data.values())))
    run.generator.set_state(position.order_rng)
    order = torch.randperm(rows, generator=run.generator)  # drawn again when an epoch resumes
    if lengths is not None:
        order = length_bucketed(order, lengths, run.settings.batch_size, run.generator)
    for start in range(position.batches * run.settings.batch_size, rows, run.settings.batch_size):
        began = time.perf_counter()
        picked = order[start:start + run.settings.batch_size]
        loss = loss_fn({name: tensor[picked].to(run.device, non_blocking=True) for name, tensor in data.items()})
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        position.batches += 1
        position.loss_sum += float(loss.detach())
        position.seconds += time.perf_counter() - began
        yield position


# How many batches of the random order are sorted by length together. Larger pools mean less padding per batch
# but batches that differ more in length; 50 batches of 128 Beauty windows leave each batch within a few events
# of its longest, and which rows meet in a batch is still random within a pool of 6,400.
BUCKET_POOL_BATCHES = 50


def length_bucketed(order: torch.Tensor, lengths: torch.Tensor, batch_size: int,
                    generator: torch.Generator) -> torch.Tensor:
    """`order` (int64 [rows], a random permutation) regrouped so that each batch holds rows of similar `lengths`:
    consecutive pools of BUCKET_POOL_BATCHES batches are each sorted by length and cut into batches, and the full
    batches are shuffled (the one short batch stays last, so slicing by `batch_size` still finds every batch).
    Every row still comes once an epoch; the order depends only on `order` and `generator`, so a resumed epoch
    draws it again."""
    pool = batch_size * BUCKET_POOL_BATCHES
    batches: list[torch.Tensor] = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        batches.extend(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size))
    short = [batches.pop()] if batches and len(batches[-1]) < batch_size else []
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return torch.cat([batches[i] for i in shuffled] + short) if batches or short else order


@dataclass
class _Run:
    """One call of `train_network`: what it steps (network, optimiser, batch-order generator) and the state a
    checkpoint holds besides them (record, best weights, position inside an epoch)."""

    network: nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    device: torch.device
    settings: TrainSettings
    steps_per_epoch: int
    rows: int  # of the training tensors
    checkpoint: Checkpoint | None
    record: TrainingRecord
    best_state: dict[str, torch.Tensor] | None = None
    position: EpochPosition | None = None  # None between epochs
    started: float = field(default_factory=time.perf_counter)  # this call's start, less the earlier calls' time
    saved_at: float = field(default_factory=time.perf_counter)
    reported_at: float | None = None  # the last in-epoch report of this call

    @classmethod
    def start(cls, network: nn.Module, data: Mapping[str, torch.Tensor], settings: TrainSettings, seed: int,
              checkpoint: Checkpoint | None) -> _Run:
        """A fresh run, or the one saved in `checkpoint`."""
        device = resolve_device(settings.device)
        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        network.to(device)
        optimizer = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=settings.learning_rate,
                                     weight_decay=settings.weight_decay)
        rows = len(next(iter(data.values())))
        run = cls(network, optimizer, torch.Generator().manual_seed(seed), device, settings,
                  math.ceil(rows / settings.batch_size), rows, checkpoint, TrainingRecord())
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            run._restore(saved)
        run.started -= run.record.train_seconds
        return run

    def clock(self) -> float:
        """The run's training time: this call's so far and every earlier call's."""
        return time.perf_counter() - self.started

    def checkpoint_due(self) -> bool:
        return self.checkpoint is not None and time.perf_counter() - self.saved_at >= self.settings.checkpoint_seconds

    def report_batch(self, progress: ProgressReporter, position: EpochPosition) -> None:
        """Tell `progress` where the epoch is: after the first batch of this call, then every REPORT_SECONDS."""
        now = time.perf_counter()
        if self.reported_at is not None and now - self.reported_at < REPORT_SECONDS:
            return
        self.reported_at = now
        per_batch = position.seconds / position.batches
        progress(self.record.epoch, self.settings.epochs, {
            "epoch": self.record.epoch + 1, "batch": position.batches, "batches": self.steps_per_epoch,
            "examples_per_s": self.settings.batch_size / per_batch if per_batch else 0.0,  # the last batch may be smaller
            "eta_seconds": per_batch * (self.steps_per_epoch - position.batches)})

    def save(self) -> None:
        """Save everything the batches after this point depend on, as tensors and plain values."""
        if self.checkpoint is None:
            return
        self.checkpoint.save({
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),  # Adam's moments and step counts
            "batch_order_rng": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),  # dropout draws from torch's global generator
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "record": self.record.to_dict(),
            "best_state": self.best_state,
            "position": None if self.position is None else self.position.to_dict(),
        })
        self.saved_at = time.perf_counter()

    def _restore(self, saved: Mapping[str, Any]) -> None:
        """Put back what `save` saved."""
        self.network.load_state_dict(saved["network"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.generator.set_state(saved["batch_order_rng"])
        torch.set_rng_state(saved["torch_rng"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        self.record = TrainingRecord(**saved["record"])
        self.best_state = saved["best_state"]
        self.position = None if saved["position"] is None else EpochPosition(**saved["position"])

    def finish(self) -> TrainingRecord:
        """Load the best epoch's weights (with validation) and leave the network in eval mode."""
        if self.best_state is not None:
            self.network.load_state_dict(self.best_state)
        self.network.eval()
        return self.record


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
