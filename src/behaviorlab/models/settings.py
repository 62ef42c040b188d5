"""How every torch model trains: one `TrainSettings`, the base of each torch model's config.

Torch-free, so a config can be read, checked and overridden from the command line without loading
torch. The loop that reads these settings is training.py's `train_network`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from behaviorlab.config import StrictConfig

# Settings a resumed run may change: they decide when to stop (or, for threads, only the float rounding
# of sums), not what an epoch computes, so a run stopped by its budget continues with a larger one.
RESUMABLE_WITH_CHANGES = ("epochs", "patience", "min_steps", "max_train_seconds", "threads")


class TrainSettings(StrictConfig):
    """Mini-batch Adam, the best validation epoch kept, early stopping and a time budget.

    A torch model's config subclasses it (and may change the defaults); these are the sequence models'.
    """

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(10, ge=1)  # epochs without a better validation score before stopping
    min_steps: int = Field(100, ge=0)  # optimiser steps before patience may stop a run (`epochs` still caps it)
    max_train_seconds: float | None = Field(None, gt=0)  # stop after the epoch that crosses this budget
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)  # torch.set_num_threads; None leaves torch's default

