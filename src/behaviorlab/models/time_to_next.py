"""When does the next event happen? Two tasks on one small feature-table network.

- `TimeToNextModel` (regression, logs with timestamps): from event i of a user, predict the gap to
  event i + 1 in log-seconds. Features: the last `history` actions and gaps, the hour of day and
  weekday of event i, and the user's mean log-gap so far. The L1 loss in log space makes the
  prediction the conditional median, which is also the median in seconds (the map is monotone) and
  so the MAE-optimal answer in human units.
- `NextHourBinModel` (classification, logs that only have 3-hour bins, e.g. SmartThings): from the
  last `history` events (action, hour bin, weekday), predict the next event's hour bin.

Both are an embedding of categorical columns (each column its own id range in one table, so one
lookup serves them all) concatenated with numeric columns, then an MLP. The tasks around them (the
splits, metrics and baselines measured the same way) are in `evaluate.timing`.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np
import polars as pl
import torch
from pydantic import Field
from torch import nn

from behaviorlab.config import parse_config
from behaviorlab.errors import DataError, ModelError, NotFittedError
from behaviorlab.models.base import (
    MANIFEST,
    VOCABULARY,
    manifest_file,
    open_saved,
    read_vocabulary,
    write_directory_atomic,
)
from behaviorlab.models.checkpoint import Checkpoint, run_identity
from behaviorlab.models.settings import TrainSettings
from behaviorlab.models.training import TrainingRecord, loss_validation, predict_batched, train_network
from behaviorlab.schema import ACTION, HOUR_BINS, TIMESTAMP, USER, WEEKDAYS, EventLog, Vocabulary

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter

SECONDS_PER_HOUR = 3600.0
WEIGHTS_FILE = "weights.pt"


class FeatureTableConfig(TrainSettings):
    """The two models' settings: one FeatureTable row per event (features of it and the `history` events before
    it), an embedding and an MLP. (A "window" elsewhere is a run of one user's consecutive events or days.)"""

    history: int = Field(3, ge=1)          # how many past events the features look back
    embedding_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    # training; no min_steps (an epoch is many steps here)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0)
    patience: int = Field(4, ge=1)  # epochs without a lower validation loss before stopping
    min_steps: int = Field(0, ge=0)
    seed: int = 0


@dataclass(frozen=True)
class FeatureTable:
    """Rows of features and targets. categorical [N, C] ids (0 = missing) with `cardinalities` [C]
    (ids < cardinality), numeric [N, K] float32, target [N], and each row's user and split key."""

    categorical: np.ndarray
    cardinalities: tuple[int, ...]
    numeric: np.ndarray
    target: np.ndarray
    users: np.ndarray
    key: np.ndarray          # what splits rows: the predicted event's time (regression) or rank from the end

    def __len__(self) -> int:
        return len(self.target)

    def rows(self, mask: np.ndarray) -> FeatureTable:
        return FeatureTable(self.categorical[mask], self.cardinalities, self.numeric[mask], self.target[mask],
                            self.users[mask], self.key[mask])


class FeatureTableNetwork(nn.Module):
    """Embedding of every categorical column + numeric columns -> MLP -> `outputs` values.

    Categorical column c has ids 0..cardinalities[c] - 1; each column gets its own id range in one
    embedding table (offset by the cardinalities before it), so one lookup serves them all."""

    def __init__(self, cardinalities: tuple[int, ...], numeric_width: int, outputs: int, embedding_dim: int,
                 hidden: int) -> None:
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(cardinalities)[:-1]]).astype(np.int64)
        self.register_buffer("offsets", torch.as_tensor(offsets))       # [C]
        self.embedding = nn.Embedding(int(sum(cardinalities)), embedding_dim)
        width = len(cardinalities) * embedding_dim + numeric_width
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, outputs))

    def forward(self, categorical: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(categorical + self.offsets).flatten(1)  # [B, C * E]
        return self.mlp(torch.cat([embedded, numeric], dim=1))             # [B, outputs]


def _lags(column: str, history: int, over: str = USER) -> list[pl.Expr]:
    """column shifted by 0..history-1 within each user: the current event and those before it."""
    return [pl.col(column).shift(lag).over(over).alias(f"{column}_{lag}") for lag in range(history)]


def _action_ids(log: EventLog, vocabulary: Vocabulary) -> pl.Expr:
    return pl.col(ACTION).replace_strict({a: vocabulary.id_of(a) for a in vocabulary.actions}, return_dtype=pl.Int64)


# ---------------------------------------------------------------- regression: time to the next event


def gap_table(log: EventLog, vocabulary: Vocabulary, history: int) -> FeatureTable:
    """One row per event that has a next event of the same user: features of event i (and the
    `history` - 1 before it), target = seconds until event i + 1, key = the time of event i + 1."""
    if log.time_column != TIMESTAMP:
        raise DataError("Time-to-next needs a log with timestamps", hint="For hour bins only, use NextHourBinModel.")
    # the local hour when the loader computed one (Foursquare), else the UTC hour
    hour = pl.col("local_hour") if "local_hour" in log.frame.columns else pl.col(TIMESTAMP).dt.hour()
    ordered = log.frame.sort([USER, TIMESTAMP], maintain_order=True).with_columns(
        _action_ids(log, vocabulary).alias("_action"),
        (pl.col(TIMESTAMP).diff().over(USER).dt.total_microseconds() / 1e6).alias("_gap"),      # seconds since previous
        (pl.col(TIMESTAMP).shift(-1).over(USER)).alias("_next_time"),
        hour.cast(pl.Int64).alias("_hour"),
        pl.col(TIMESTAMP).dt.weekday().cast(pl.Int64).alias("_weekday"),                      # 1..7
    ).with_columns(
        (pl.col("_next_time") - pl.col(TIMESTAMP)).dt.total_microseconds().alias("_target_us"),
        pl.col("_gap").log1p().alias("_log_gap"),
    ).with_columns(
        # the user's mean log-gap over the gaps seen so far (0 before the first gap)
        (pl.col("_log_gap").fill_null(0).cum_sum().over(USER) / pl.int_range(pl.len()).over(USER).clip(1)).alias("_mean_log_gap"),
        *_lags("_action", history), *_lags("_log_gap", history),
    ).filter(pl.col("_next_time").is_not_null())
    actions = ordered.select([f"_action_{lag}" for lag in range(history)]).fill_null(0).to_numpy()        # [N, H]
    gaps = ordered.select([f"_log_gap_{lag}" for lag in range(history)]).to_numpy().astype(np.float32)   # [N, H], NaN = none
    categorical = np.column_stack([actions, ordered.get_column("_hour").to_numpy() + 1,
                                   ordered.get_column("_weekday").to_numpy()]).astype(np.int64)
    numeric = np.column_stack([np.nan_to_num(gaps), np.isnan(gaps), ordered.get_column("_mean_log_gap").to_numpy()])
    return FeatureTable(
        categorical=categorical,
        cardinalities=(vocabulary.size_with_padding,) * history + (25, 8),
        numeric=numeric.astype(np.float32),
        target=ordered.get_column("_target_us").to_numpy() / 1e6,
        users=ordered.get_column(USER).to_numpy(),
        key=ordered.get_column("_next_time").to_numpy(),
    )


# ---------------------------------------------------------------- classification: the next hour bin


def hour_bin_table(log: EventLog, vocabulary: Vocabulary, history: int) -> FeatureTable:
    """One row per event with at least one event before it: the previous `history` events' action,
    hour bin and weekday -> this event's hour bin (0..7). key = the event's rank from the user's end."""
    missing = [c for c in ("hour_bin",) if c not in log.frame.columns]
    if missing:
        raise DataError("Predicting the next hour bin needs an 'hour_bin' column", hint="Load SmartThings-style data.")
    bins = {b: i + 1 for i, b in enumerate(HOUR_BINS)}
    days = {d: i + 1 for i, d in enumerate(WEEKDAYS)}
    unknown = sorted(set(log.frame.get_column("hour_bin").unique().to_list()) - set(bins))
    if unknown:
        raise DataError(f"Unknown hour bins {unknown[:5]}", hint=f"Hour bins are {', '.join(HOUR_BINS)}.")
    weekday = (pl.col("weekday").replace_strict(days, default=0, return_dtype=pl.Int64) if "weekday" in log.frame.columns
               else pl.lit(0, dtype=pl.Int64))
    ordered = log.frame.sort([USER, log.time_column], maintain_order=True).with_columns(
        _action_ids(log, vocabulary).alias("_action"),
        pl.col("hour_bin").replace_strict(bins, return_dtype=pl.Int64).alias("_bin"),
        weekday.alias("_day"),
        (pl.len().over(USER) - 1 - pl.int_range(pl.len()).over(USER)).alias("_from_end"),
    )
    # the features of row i are those of events i-1, i-2, ...: lag 1..history
    lagged = ordered.with_columns(*[pl.col(c).shift(lag).over(USER).alias(f"{c}_{lag}")
                                    for c in ("_action", "_bin", "_day") for lag in range(1, history + 1)])
    lagged = lagged.filter(pl.col("_action_1").is_not_null())
    columns = [f"{c}_{lag}" for c in ("_action", "_bin", "_day") for lag in range(1, history + 1)]
    return FeatureTable(
        categorical=lagged.select(columns).fill_null(0).to_numpy().astype(np.int64),
        cardinalities=(vocabulary.size_with_padding,) * history + (len(HOUR_BINS) + 1,) * history + (8,) * history,
        numeric=np.zeros((lagged.height, 0), dtype=np.float32),
        target=lagged.get_column("_bin").to_numpy() - 1,
        users=lagged.get_column(USER).to_numpy(),
        key=lagged.get_column("_from_end").to_numpy(),
    )


# ---------------------------------------------------------------- the two models


class _FeatureTableModel(ABC):
    """Shared fit/predict/save of the two models over a FeatureTable; subclasses say how to build tables."""

    name: str  # the registry name of the kind
    outputs: int

    def __init__(self, config: FeatureTableConfig | None = None) -> None:
        self.config = config or FeatureTableConfig()
        self.vocabulary_: Vocabulary | None = None
        self.network_: nn.Module | None = None
        self.training_record_: TrainingRecord | None = None

    @abstractmethod
    def _loss(self) -> nn.Module:
        """The training loss between network outputs and `_target_tensor`."""

    @abstractmethod
    def _target_tensor(self, table: FeatureTable) -> torch.Tensor:
        """The table's targets in the form the loss takes."""

    def _tensors(self, table: FeatureTable) -> dict[str, torch.Tensor]:
        return {"categorical": torch.as_tensor(table.categorical), "numeric": torch.as_tensor(table.numeric),
                "target": self._target_tensor(table)}

    def fit(self, train: FeatureTable, valid: FeatureTable | None = None, progress: ProgressReporter | None = None,
            checkpoint: str | Path | None = None) -> Self:
        """Train on `train`'s rows, early stopping on `valid`'s loss; `checkpoint` makes it resumable
        (as for the sequence models, NeuralModel.fit)."""
        if self.vocabulary_ is None:
            raise ModelError(f"Build the {self.name} tables with this model's `features(log)` first")
        torch.manual_seed(self.config.seed)
        network = self.network_ = FeatureTableNetwork(train.cardinalities, train.numeric.shape[1], self.outputs,
                                                self.config.embedding_dim, self.config.hidden)
        criterion = self._loss()

        def loss_fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return criterion(network(batch["categorical"], batch["numeric"]), batch["target"])

        tensors = self._tensors(train)
        valid_tensors = self._tensors(valid) if valid is not None and len(valid) else None
        validation = None if valid_tensors is None else loss_validation(loss_fn, valid_tensors, self.config)
        run = None
        if checkpoint is not None:
            checked = None if valid_tensors is None else [t.numpy() for t in valid_tensors.values()]
            meaning = self.vocabulary_.to_json().encode()  # what the action ids stand for
            identity = run_identity(self.name, self.config, [*(t.numpy() for t in tensors.values()), meaning], checked)
            run = Checkpoint(Path(checkpoint), identity)
        self.training_record_ = train_network(network, loss_fn, tensors, self.config, self.config.seed, validation,
                                              progress, run)
        return self

    def _outputs(self, table: FeatureTable) -> np.ndarray:
        if self.network_ is None:
            raise NotFittedError(self.name)
        return predict_batched(self.network_, [torch.as_tensor(table.categorical), torch.as_tensor(table.numeric)]).numpy()

    def _adopt(self, log: EventLog) -> Vocabulary:
        """The vocabulary is fixed by the first log the model sees; later logs must share it."""
        if self.vocabulary_ is None:
            self.vocabulary_ = log.vocabulary
        elif set(log.vocabulary.actions) - set(self.vocabulary_.actions):
            raise DataError("The log has actions the model was not built with", hint="Use the training log's vocabulary.")
        return self.vocabulary_

    def save(self, path: str | Path) -> None:
        """The saved-model layout (base.py): manifest with the network's shapes, vocabulary.json, weights.pt."""
        if self.network_ is None or self.vocabulary_ is None:
            raise NotFittedError(self.name)
        buffer = io.BytesIO()
        torch.save(self.network_.state_dict(), buffer)
        offsets = self.network_.offsets.numpy()
        cardinalities = np.diff(np.append(offsets, self.network_.embedding.num_embeddings)).tolist()
        numeric_width = self.network_.mlp[0].in_features - len(cardinalities) * self.config.embedding_dim
        files = manifest_file(self.name, self.config, {}, cardinalities=cardinalities, numeric_width=numeric_width)
        write_directory_atomic(path, files | {VOCABULARY: self.vocabulary_.to_json().encode(), WEIGHTS_FILE: buffer.getvalue()})

    @classmethod
    def load(cls, path: str | Path) -> Self:
        directory, manifest = open_saved(path, cls.name)
        model = cls(parse_config(FeatureTableConfig, manifest["config"], where=f"config in {directory / MANIFEST}"))
        model.vocabulary_ = read_vocabulary(directory)
        model.network_ = FeatureTableNetwork(tuple(manifest["cardinalities"]), manifest["numeric_width"], cls.outputs,
                                       model.config.embedding_dim, model.config.hidden)
        model.network_.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        model.network_.eval()
        return model


class TimeToNextModel(_FeatureTableModel):
    """Predicts the seconds until a user's next event (trained on log1p seconds with an L1 loss)."""

    name = "time-to-next"
    outputs = 1

    def features(self, log: EventLog) -> FeatureTable:
        return gap_table(log, self._adopt(log), self.config.history)

    def _loss(self) -> nn.Module:
        return nn.L1Loss()

    def _target_tensor(self, table: FeatureTable) -> torch.Tensor:
        return torch.as_tensor(np.log1p(table.target), dtype=torch.float32).unsqueeze(1)  # [N, 1]

    def predict_seconds(self, table: FeatureTable) -> np.ndarray:
        """float64 [N]: predicted seconds to the next event."""
        return np.expm1(np.clip(self._outputs(table)[:, 0].astype(np.float64), 0.0, None))


class NextHourBinModel(_FeatureTableModel):
    """Predicts the 3-hour bin of a user's next event (softmax over the 8 bins)."""

    name = "next-hour-bin"
    outputs = len(HOUR_BINS)

    def features(self, log: EventLog) -> FeatureTable:
        return hour_bin_table(log, self._adopt(log), self.config.history)

    def _loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def _target_tensor(self, table: FeatureTable) -> torch.Tensor:
        return torch.as_tensor(table.target, dtype=torch.int64)

    def predict_proba(self, table: FeatureTable) -> np.ndarray:
        """float64 [N, 8]: p(next hour bin = HOUR_BINS[j])."""
        return torch.softmax(torch.as_tensor(self._outputs(table)), dim=1).numpy().astype(np.float64)
