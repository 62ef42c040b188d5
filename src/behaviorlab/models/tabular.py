"""One small training loop for the feature-table models (CTR, time-to-next, hour bin, daily counts).

The sequence models share `training.py` (cross-entropy over actions, NDCG early stopping); the models
here have fixed-size feature tensors and their own losses (BCE, MSE, Poisson), so they share this loop:
mini-batch Adam on the training rows, the validation loss after each epoch, the best epoch's weights
kept (validation only), early stop after `patience` epochs without improvement. Seeds are fixed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.progress import ProgressReporter, no_progress

LossFn = Callable[..., torch.Tensor]  # (network output, target) -> scalar loss


class FitSettings(StrictConfig):
    """How a feature-table network is trained; embedded in each model's config as `fit`."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(3, ge=1)


@dataclass(frozen=True)
class TrainingHistory:
    train_losses: list[float]
    valid_losses: list[float]
    best_epoch: int  # 1-based; with no validation data, the last epoch


def train_network(network: torch.nn.Module, loss_fn: LossFn,
                  train: Sequence[torch.Tensor], valid: Sequence[torch.Tensor] | None,
                  settings: FitSettings, seed: int, progress: ProgressReporter | None = None) -> TrainingHistory:
    """Train `network` in place; `seed` orders the batches (the caller seeds the initial weights).

    `train`/`valid` are (input_1, ..., input_k, target) tensors with aligned rows; the network is
    called as network(input_1, ..., input_k)."""
    progress = progress or no_progress
    generator = torch.Generator().manual_seed(seed)  # the batch order; the caller seeds the weights
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    n = train[0].shape[0]
    train_losses: list[float] = []
    valid_losses: list[float] = []
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(network.state_dict())
    for epoch in range(1, settings.epochs + 1):
        network.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, settings.batch_size):
            rows = order[start:start + settings.batch_size]
            *inputs, target = (tensor[rows] for tensor in train)
            loss = loss_fn(network(*inputs), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        train_losses.append(total / max(n, 1))
        if valid is None:
            best_epoch, best_state = epoch, copy.deepcopy(network.state_dict())
            progress(epoch, settings.epochs, {"epoch": epoch, "train_loss": train_losses[-1]})
            continue
        valid_losses.append(evaluate_loss(network, loss_fn, valid, settings.batch_size))
        progress(epoch, settings.epochs, {"epoch": epoch, "train_loss": train_losses[-1], "valid_loss": valid_losses[-1]})
        if valid_losses[-1] < best_loss:
            best_loss, best_epoch, best_state = valid_losses[-1], epoch, copy.deepcopy(network.state_dict())
        elif epoch - best_epoch >= settings.patience:
            break
    network.load_state_dict(best_state)
    network.eval()
    return TrainingHistory(train_losses, valid_losses, best_epoch)


def evaluate_loss(network: torch.nn.Module, loss_fn: LossFn, data: Sequence[torch.Tensor],
                  batch_size: int) -> float:
    """Mean loss over all rows, in evaluation mode and without gradients."""
    network.eval()
    n = data[0].shape[0]
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, batch_size):
            *inputs, target = (tensor[start:start + batch_size] for tensor in data)
            total += float(loss_fn(network(*inputs), target)) * target.shape[0]
    return total / max(n, 1)


def predict_batched(network: torch.nn.Module, inputs: Sequence[torch.Tensor], batch_size: int = 4096) -> torch.Tensor:
    """network(*inputs) over row batches, concatenated, without gradients."""
    network.eval()
    n = inputs[0].shape[0]
    with torch.no_grad():
        parts = [network(*(tensor[start:start + batch_size] for tensor in inputs)) for start in range(0, n, batch_size)]
    return torch.cat(parts) if parts else network(*inputs)
