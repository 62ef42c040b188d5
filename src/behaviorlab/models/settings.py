"""How every torch model trains: one `TrainSettings`, the base of each torch model's config.

Torch-free, so a config can be read, checked and overridden from the command line without loading
torch. The loop that reads these settings is training.py's `train_network`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from behaviorlab.config import StrictConfig

# Epochs before patience may stop a run, whatever the batch size: min_steps counts optimiser steps, which a
# large dataset makes in its first epoch, and a slow starter's validation score can sit still for epochs
# (GRU4Rec on Kasteren, 3 validation examples: NDCG@10 0.544 from epoch 1 to 7, 0.877 at epoch 9). With the
# sequence models' patience of 10 it changes nothing; it keeps a short patience (the feature-table models
# use 3 to 5) from stopping at epoch 4 on one lucky first score.
MIN_EPOCHS = 5

# The wait for a better epoch grows with the run: patience is max(patience, ceil(PATIENCE_FRACTION x best epoch)).
# A fixed patience of 10 judges a model that needed 40 epochs to reach its best by the same 10-epoch window as
# one that peaked at epoch 3, though its gains come slower and its scores wander further between them (SASRec
# on MovieLens-100k still gains after epoch 30). Half the epochs to the best one changes nothing for a run
# that peaks by epoch 20 (with the sequence models' patience of 10), and waits 20 epochs after a best at epoch
# 40: at most a third more training than the run had done, for a model that was still finding gains that late.
PATIENCE_FRACTION = 0.5

# Settings a resumed run may change: they decide when to stop (or, for threads, only the float rounding
# of sums; for the sequence models' markov_baseline, only what is said after the fit), not what an epoch
# computes, so a run stopped by its budget continues with a larger one.
RESUMABLE_WITH_CHANGES = ("epochs", "patience", "patience_fraction", "min_epochs", "min_steps", "max_train_seconds",
                          "checkpoint_seconds", "threads", "markov_baseline")


class TrainSettings(StrictConfig):
    """Mini-batch Adam, the best validation epoch kept, early stopping, a time budget and checkpoints.

    A torch model's config subclasses it (and may change the defaults); these are the sequence models'.
    Patience stops a run after `patience_after(best epoch)` epochs without a gain (PATIENCE_FRACTION above),
    and only after `min_epochs` epochs and `min_steps` optimiser steps (why: MIN_EPOCHS above and training.py). The budget is checked after every batch; with a checkpoint the run is saved
    every `checkpoint_seconds` inside an epoch (a minute costs one save of the weights and the optimiser,
    small next to a minute of training) and when the budget runs out, so a kill or a budget stop loses at
    most a minute and `--resume` continues at the next batch.
    """

    epochs: int = Field(50, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    patience: int = Field(10, ge=1)  # epochs without a better validation score before stopping (at least)
    patience_fraction: float = Field(PATIENCE_FRACTION, ge=0.0)  # or this fraction of the best epoch, if more
    min_epochs: int = Field(MIN_EPOCHS, ge=0)  # epochs before patience may stop a run (`epochs` still caps it)
    min_steps: int = Field(100, ge=0)  # optimiser steps before patience may stop a run (`epochs` still caps it)
    max_train_seconds: float | None = Field(None, gt=0)  # stop at the first batch past this much training time
    checkpoint_seconds: float = Field(60.0, gt=0)  # with a checkpoint: save inside an epoch this often (and after each)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1)  # torch.set_num_threads; None leaves torch's default

    def patience_after(self, best_epoch: int) -> int:
        """Epochs without a gain that stop a run whose best epoch (1-based) is `best_epoch`."""
        return max(self.patience, math.ceil(self.patience_fraction * best_epoch))
