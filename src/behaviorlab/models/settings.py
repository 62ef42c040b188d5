"""How every torch model trains: one `TrainSettings`, the base of each torch model's config.

Torch-free, so a config can be read, checked and overridden from the command line without loading
torch. The loop that reads these settings is training.py's `train_network`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from behaviorlab.config import StrictConfig

# Epochs before patience may stop a run, whatever the batch size: min_steps counts optimiser steps, which a
# large dataset makes in its first epoch, and a slow starter's validation score can sit still for epochs
# (GRU4Rec on Kasteren, 3 validation examples: NDCG@10 0.544 from epoch 1 to 7, 0.877 at epoch 9). With the
# sequence models' patience of 10 it changes nothing; it keeps a short patience (the feature-table models
# use 3 to 5) from stopping at epoch 4 on one lucky first score.
MIN_EPOCHS = 5

# Settings a resumed run may change: they decide when to stop (or, for threads, only the float rounding
# of sums), not what an epoch computes, so a run stopped by its budget continues with a larger one.
RESUMABLE_WITH_CHANGES = ("epochs", "patience", "min_epochs", "min_steps", "max_train_seconds", "checkpoint_seconds",
                          "threads")


class TrainSettings(StrictConfig):
    """Mini-batch Adam, the best validation epoch kept, early stopping, a time budget and checkpoints.

    A torch model's config subclasses it (and may change the defaults); these are the sequence models'.
    Patience stops a run only after `min_epochs` epochs and `min_steps` optimiser steps (why: MIN_EPOCHS
    above and training.py). The budget is checked after every batch; with a checkpoint the run is saved
    every `checkpoint_seconds` inside an epoch (a minute costs one save of the weights and the optimiser,
    small next to a minute of training) and when the budget runs out, so a kill or a budget stop loses at
    most a minute and `--resume` continues at the next batch.
    """

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(10, ge=1)  # epochs without a better validation score before stopping
    min_epochs: int = Field(MIN_EPOCHS, ge=0)  # epochs before patience may stop a run (`epochs` still caps it)
    min_steps: int = Field(100, ge=0)  # optimiser steps before patience may stop a run (`epochs` still caps it)
    max_train_seconds: float | None = Field(None, gt=0)  # stop at the first batch past this much training time
    checkpoint_seconds: float = Field(60.0, gt=0)  # with a checkpoint: save inside an epoch this often (and after each)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)  # torch.set_num_threads; None leaves torch's default

