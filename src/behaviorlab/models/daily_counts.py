"""Forecast each user's daily event counts: an ARIMA baseline against a small neural model.

The log becomes a matrix of counts [U, D] (users x calendar days, the user's local day when the log
has a UTC offset). The last `horizon` days are the test tail, the `horizon` days before them the
validation tail; everything before is training history. Both forecasters predict a whole tail at
once from the days before it:

- ARIMA (statsmodels), one model per user. The (p, d, q) order is chosen among `arima_orders` by
  the mean validation MAE over users (fit on the training days, forecast the validation tail),
  then each user's model is refit on training + validation days to forecast the test tail.
  A fit that raises is counted in `arima_failures` and that user's forecast is its training mean.
  ARIMA is the task's baseline, not a model behaviorlab trains and saves: each fit is a deterministic
  maximum-likelihood fit of one short series (no epochs, no random state, nothing another command reads),
  so it has no checkpoint; after a kill, `compare_forecasters` (and `timing daily --resume`) refits it and
  gets the same forecasts, while the neural model, the one learned across users, resumes from its own.
- Neural: one MLP shared by all users. Input: log1p of the last `window` days' counts and the
  weekday of the first forecast day; output: the log of the expected count for each of the next
  `horizon` days, trained with the Poisson likelihood on every window that ends inside the training
  days, early-stopped on the validation tail. At test time it reads the `window` days before the
  test tail (so it sees the validation days as input, as ARIMA does when refit).

`evaluate.timing.compare_forecasters` scores both on the same test tail beside two baselines: each
user's mean over the last `window` days, and the same weekday one week earlier (seasonal naive).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np
import polars as pl
import torch
from pydantic import Field
from torch import nn

from behaviorlab.config import parse_config
from behaviorlab.errors import DataError, NotFittedError
from behaviorlab.models.base import MANIFEST, manifest_file, open_saved, write_directory_atomic
from behaviorlab.models.checkpoint import Checkpoint, run_identity
from behaviorlab.models.settings import TrainSettings
from behaviorlab.models.training import TrainingRecord, loss_validation, predict_batched, train_network
from behaviorlab.schema import TIMESTAMP, USER, EventLog
from behaviorlab.sequences import UTC_OFFSET_COLUMN

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter

Order = tuple[int, int, int]
WEIGHTS_FILE = "weights.pt"


class DailyCountsConfig(TrainSettings):
    horizon: int = Field(7, ge=1)           # days in each of the validation and test tails
    window: int = Field(14, ge=1)           # days of history the neural model reads
    min_events: int = Field(10, ge=1)       # users with fewer events before the tails are left out
    max_users: int | None = Field(None, ge=1)  # seeded sample of users (ARIMA fits one model per user)
    arima_orders: tuple[Order, ...] = ((1, 0, 0), (1, 0, 1), (2, 0, 1), (0, 1, 1))
    hidden: int = Field(64, ge=1)
    # training: the neural forecaster's; no min_steps (one epoch is many steps here)
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(256, ge=1)
    learning_rate: float = Field(2e-3, gt=0.0)
    patience: int = Field(5, ge=1)  # epochs without a lower validation loss before stopping
    min_steps: int = Field(0, ge=0)
    seed: int = 0


@dataclass(frozen=True)
class DailyCounts:
    users: list[str]
    days: list[date]
    counts: np.ndarray  # float64 [U, D]


def daily_count_matrix(log: EventLog) -> DailyCounts:
    """Events per user per calendar day, over every day from the log's first to its last (zeros kept)."""
    if log.time_column != TIMESTAMP:
        raise DataError("Daily counts need a log with timestamps", hint="Position-ordered logs have no days.")
    if log.n_events == 0:
        raise DataError("Cannot count events of an empty log")
    stamp = pl.col(TIMESTAMP)
    if UTC_OFFSET_COLUMN in log.frame.columns:
        stamp = stamp + pl.duration(minutes=pl.col(UTC_OFFSET_COLUMN).fill_null(0))
    per_day = log.frame.group_by(USER, stamp.dt.date().alias("day")).len()
    first, last = per_day.get_column("day").min(), per_day.get_column("day").max()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    users = sorted(per_day.get_column(USER).unique().to_list())
    user_row = {u: i for i, u in enumerate(users)}
    counts = np.zeros((len(users), len(days)))
    rows = np.array([user_row[u] for u in per_day.get_column(USER).to_list()])
    columns = np.array([(d - first).days for d in per_day.get_column("day").to_list()])
    counts[rows, columns] = per_day.get_column("len").to_numpy()
    return DailyCounts(users, days, counts)


def select_users(data: DailyCounts, config: DailyCountsConfig) -> DailyCounts:
    """Users with at least `min_events` before the two tails, optionally a seeded sample of them."""
    train_days = len(data.days) - 2 * config.horizon
    if train_days < config.window + config.horizon:
        raise DataError(f"The log spans {len(data.days)} days; the split needs at least "
                        f"{config.window + 3 * config.horizon} (window + 3 x horizon)",
                        hint="Use a shorter window/horizon or a longer log.")
    keep = np.flatnonzero(data.counts[:, :train_days].sum(axis=1) >= config.min_events)
    if config.max_users is not None and len(keep) > config.max_users:
        keep = np.sort(np.random.default_rng(config.seed).choice(keep, config.max_users, replace=False))
    if not len(keep):
        raise DataError(f"No user has {config.min_events} events before the held-out tails", hint="Lower min_events.")
    return DailyCounts([data.users[i] for i in keep], data.days, data.counts[keep])


# ---------------------------------------------------------------- ARIMA


@dataclass
class ArimaResult:
    order: Order
    validation_mae: dict[str, float]        # str(order) -> mean validation MAE
    forecast: np.ndarray                    # [U, horizon] test-tail forecast
    arima_failures: int = 0
    failed_users: list[str] = field(default_factory=list)


def _arima_forecast(series: np.ndarray, order: Order, horizon: int) -> np.ndarray | None:
    """The next `horizon` values of one series, or None when statsmodels cannot fit it."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        # Short, sparse count series often trip these; the fit is still usable, and failures are counted.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            fitted = ARIMA(series, order=order).fit()
            return np.clip(np.asarray(fitted.forecast(horizon), dtype=np.float64), 0.0, None)
        except (ValueError, np.linalg.LinAlgError):
            return None


def arima_forecast(data: DailyCounts, config: DailyCountsConfig, progress: ProgressReporter | None = None) -> ArimaResult:
    from statsmodels.tsa.arima.model import ARIMA  # noqa: F401 - load its BLAS before limiting the threads
    from threadpoolctl import threadpool_limits

    # One BLAS thread: these fits are tiny, and on a busy machine extra BLAS threads make each one
    # 10-25x slower (measured: ARMA(1,1) on 300 days, 10 s with default threads vs 0.4 s with one).
    with threadpool_limits(limits=1):
        return _arima_forecast_all(data, config, progress)


def _arima_forecast_all(data: DailyCounts, config: DailyCountsConfig, progress: ProgressReporter | None) -> ArimaResult:
    h = config.horizon
    valid_start, test_start = len(data.days) - 2 * h, len(data.days) - h
    steps, done = len(data.users) * (len(config.arima_orders) + 1), 0
    scores: dict[str, float] = {}
    for order in config.arima_orders:
        errors = []
        for series in data.counts:
            forecast = _arima_forecast(series[:valid_start], order, h)
            fallback = np.full(h, series[:valid_start].mean())
            errors.append(np.abs((forecast if forecast is not None else fallback) - series[valid_start:test_start]).mean())
            done += 1
            if progress is not None:
                progress(done, steps)
        scores[str(order)] = float(np.mean(errors))
        if progress is not None:  # one line per candidate order, not one per user
            progress(done, steps, {"order": str(order), "valid_MAE": scores[str(order)]})
    best = min(config.arima_orders, key=lambda o: scores[str(o)])
    result = ArimaResult(best, scores, np.zeros((len(data.users), h)))
    for row, series in enumerate(data.counts):
        forecast = _arima_forecast(series[:test_start], best, h)
        if forecast is None:
            result.arima_failures += 1
            result.failed_users.append(data.users[row])
            forecast = np.full(h, series[:test_start].mean())
        result.forecast[row] = forecast
        done += 1
        if progress is not None:
            progress(done, steps)
    return result


# ---------------------------------------------------------------- neural


def build_count_network(config: DailyCountsConfig) -> nn.Module:
    """[B, window] log1p counts + [B, 7] weekday one-hot -> [B, horizon] log expected counts."""
    return nn.Sequential(nn.Linear(config.window + 7, config.hidden), nn.ReLU(),
                         nn.Linear(config.hidden, config.hidden), nn.ReLU(),
                         nn.Linear(config.hidden, config.horizon))


def _windows(data: DailyCounts, ends: Sequence[int], config: DailyCountsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [U * len(ends), window + 7] and targets [U * len(ends), horizon] for forecasts starting at each end."""
    inputs, targets = [], []
    for end in ends:
        history = np.log1p(data.counts[:, end - config.window:end])                       # [U, window]
        weekday = np.zeros((len(data.users), 7))
        weekday[:, data.days[end].weekday() if end < len(data.days) else 0] = 1.0          # [U, 7]
        inputs.append(np.concatenate([history, weekday], axis=1))
        targets.append(data.counts[:, end:end + config.horizon])
    return np.concatenate(inputs).astype(np.float32), np.concatenate(targets).astype(np.float32)


class DailyCountsModel:
    """The neural forecaster on its own, saved like every model (base.py's layout: manifest and weights.pt).

    `fit(data)` trains on the days before `data`'s validation and test tails (the last 2 x horizon
    days) and stops early on the validation tail; `forecast(data, start)` predicts the `horizon` days
    from day index `start`, reading the `window` days before it."""

    name = "daily-counts"  # its kind in the registry and in saved manifests

    def __init__(self, config: DailyCountsConfig | None = None) -> None:
        self.config = config or DailyCountsConfig()
        self.network_: nn.Module | None = None
        self.training_record_: TrainingRecord | None = None

    def fit(self, data: DailyCounts, progress: ProgressReporter | None = None,
            checkpoint: str | Path | None = None) -> Self:
        """`checkpoint` makes the training resumable, as for the sequence models (NeuralModel.fit)."""
        config = self.config
        valid_start = len(data.days) - 2 * config.horizon
        ends = range(config.window, valid_start - config.horizon + 1)  # windows whose targets are training days
        train_x, train_y = _windows(data, ends, config)
        valid_x, valid_y = _windows(data, [valid_start], config)
        torch.manual_seed(config.seed)
        network = self.network_ = build_count_network(config)
        poisson = nn.PoissonNLLLoss(log_input=True)

        def loss_fn(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return poisson(network(batch["inputs"]), batch["counts"])  # [B, horizon] log rates against counts

        valid = {"inputs": torch.as_tensor(valid_x), "counts": torch.as_tensor(valid_y)}
        run = None
        if checkpoint is not None:
            run = Checkpoint(Path(checkpoint), run_identity(self.name, config, [train_x, train_y], [valid_x, valid_y]))
        self.training_record_ = train_network(network, loss_fn, {"inputs": torch.as_tensor(train_x),
                                                                 "counts": torch.as_tensor(train_y)},
                                              config, config.seed, loss_validation(loss_fn, valid, config), progress, run)
        return self

    def forecast(self, data: DailyCounts, start: int) -> np.ndarray:
        """float64 [U, horizon]: the expected counts of each user's `horizon` days from day index `start`."""
        if self.network_ is None:
            raise NotFittedError(self.name)
        inputs, _ = _windows(data, [start], self.config)
        return torch.exp(predict_batched(self.network_, [torch.as_tensor(inputs)])).numpy().astype(np.float64)

    def save(self, path: str | Path) -> None:
        if self.network_ is None:
            raise NotFittedError(self.name)
        buffer = io.BytesIO()
        torch.save(self.network_.state_dict(), buffer)
        write_directory_atomic(path, manifest_file(self.name, self.config, {}) | {WEIGHTS_FILE: buffer.getvalue()})

    @classmethod
    def load(cls, path: str | Path) -> Self:
        directory, manifest = open_saved(path, cls.name)
        model = cls(parse_config(DailyCountsConfig, manifest["config"], where=f"config in {directory / MANIFEST}"))
        model.network_ = build_count_network(model.config)
        model.network_.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        model.network_.eval()
        return model
