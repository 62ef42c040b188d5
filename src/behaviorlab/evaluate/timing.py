"""The timing tasks (`behaviorlab timing gaps`, `hour-bin`, `daily`) as library calls: each splits the log,
fits on the training part (early stopping on validation), and scores the test part once beside baselines
measured the same way.

- Time to next event (`timing_gaps`): one global time cut, the rule of `sequences.temporal_split`; a row
  belongs to the part of the event it predicts (`gap_split`). MAE/RMSE in hours and in log-seconds.
- Next hour bin (`timing_hour_bin`): the published split, else leave-one-out (`hour_bin_split`).
- Daily counts (`compare_forecasters`): ARIMA against the neural forecaster and two baselines on the same
  test tail (models.daily_counts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from behaviorlab.errors import DataError
from behaviorlab.metrics import accuracy, macro_recall, mae, rmse
from behaviorlab.models.daily_counts import (
    DailyCountsConfig,
    DailyCountsModel,
    Order,
    arima_forecast,
    daily_count_matrix,
    select_users,
)
from behaviorlab.models.time_to_next import (
    SECONDS_PER_HOUR,
    FeatureTable,
    FeatureTableConfig,
    NextHourBinModel,
    TimeToNextModel,
)
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import HOUR_BINS, SPLIT, USER, EventLog
from behaviorlab.sequences import split_rule, temporal_cuts


def gap_split(table: FeatureTable, log: EventLog, valid_ratio: float = 0.1,
              test_ratio: float = 0.1) -> tuple[FeatureTable, FeatureTable, FeatureTable]:
    """One global time cut, the rule of `sequences.temporal_split` (`temporal_cuts`); a row belongs to
    the part of the event it predicts."""
    # table.key is naive datetime64[us] in UTC; the cuts are aware UTC datetimes
    valid_cut, test_cut = (np.datetime64(cut.replace(tzinfo=None), "us") for cut in temporal_cuts(log, valid_ratio, test_ratio))
    parts = (table.rows(table.key < valid_cut), table.rows((table.key >= valid_cut) & (table.key < test_cut)),
             table.rows(table.key >= test_cut))
    if any(len(part) == 0 for part in parts):
        raise DataError(f"The temporal split left a part empty (train/valid/test rows: {[len(p) for p in parts]})",
                        hint="Use a longer log or larger valid/test ratios.")
    return parts


def gap_metrics(seconds_true: np.ndarray, seconds_pred: np.ndarray) -> dict[str, float]:
    """MAE/RMSE in hours, and MAE in log-seconds (the scale the model learns on)."""
    return {"MAE_hours": mae(seconds_true, seconds_pred) / SECONDS_PER_HOUR,
            "RMSE_hours": rmse(seconds_true, seconds_pred) / SECONDS_PER_HOUR,
            "MAE_log_seconds": mae(np.log1p(seconds_true), np.log1p(seconds_pred))}


def gap_baselines(train: FeatureTable, test: FeatureTable) -> dict[str, dict[str, float]]:
    """Constant global mean and median of the training gaps, and each user's own training median."""
    median = float(np.median(train.target))
    per_user = pl.DataFrame({"u": train.users, "g": train.target}).group_by("u").agg(pl.col("g").median())
    lookup = dict(zip(per_user.get_column("u").to_list(), per_user.get_column("g").to_list(), strict=True))
    user_median = np.array([lookup.get(u, median) for u in test.users])
    return {
        "global mean": gap_metrics(test.target, np.full(len(test), float(np.mean(train.target)))),
        "global median": gap_metrics(test.target, np.full(len(test), median)),
        "user median": gap_metrics(test.target, user_median),
    }


def hour_bin_split(table: FeatureTable, log: EventLog) -> tuple[FeatureTable, FeatureTable, FeatureTable]:
    """The log's published split when it has one (train users: every row; valid/test users: their
    last event), else leave-one-out (last event = test, the one before = valid, earlier = train): the
    rows of `sequences.make_split`'s default rule, on the feature table."""
    if split_rule(log) == "published":
        labels = dict(log.frame.select(USER, SPLIT).unique(USER).iter_rows())
        part = np.array([labels[u] for u in table.users])
        last = table.key == 0
        parts = (table.rows(part == "train"), table.rows((part == "valid") & last), table.rows((part == "test") & last))
    else:
        parts = (table.rows(table.key >= 2), table.rows(table.key == 1), table.rows(table.key == 0))
    if any(len(p) == 0 for p in parts):
        raise DataError(f"The split left a part empty (train/valid/test rows: {[len(p) for p in parts]})",
                        hint="Users need at least 4 events, or the log needs train/valid/test labels.")
    return parts


def hour_bin_metrics(probabilities: np.ndarray, target: np.ndarray) -> dict[str, float]:
    return {"accuracy": accuracy(probabilities, target), "macro_recall": macro_recall(probabilities, target)}


def hour_bin_baselines(train: FeatureTable, test: FeatureTable) -> dict[str, dict[str, float]]:
    """The most frequent training bin, and the previous event's bin (persistence)."""
    n_bins = len(HOUR_BINS)
    majority = np.zeros((len(test), n_bins))
    majority[:, np.bincount(train.target, minlength=n_bins).argmax()] = 1.0
    history = (test.categorical.shape[1]) // 3
    previous = np.zeros((len(test), n_bins))
    previous[np.arange(len(test)), test.categorical[:, history] - 1] = 1.0    # lag-1 bin column, ids 1..8
    return {"majority bin": hour_bin_metrics(majority, test.target),
            "previous event's bin": hour_bin_metrics(previous, test.target)}


def forecast_metrics(truth: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    return {"MAE": mae(truth.ravel(), forecast.ravel()), "RMSE": rmse(truth.ravel(), forecast.ravel())}


@dataclass(frozen=True)
class DailyCountsReport:
    users: int
    days: int
    test_days: list[str]
    metrics: dict[str, dict[str, float]]     # forecaster -> {"MAE", "RMSE"} on the test tail
    arima_order: Order
    arima_validation_mae: dict[str, float]
    arima_failures: int
    neural_best_epoch: int


def compare_forecasters(log: EventLog, config: DailyCountsConfig | None = None, progress: ProgressReporter | None = None,
                        *, neural: DailyCountsModel | None = None,
                        checkpoint: str | Path | None = None) -> DailyCountsReport:
    """ARIMA, the neural model and the two baselines on the same users and the same test tail.

    `neural` is the neural forecaster to fit (a fresh one of `config` when None), fitted in place so the
    caller can save it; `checkpoint` makes its training resumable (DailyCountsModel.fit)."""
    config = config or DailyCountsConfig()
    data = select_users(daily_count_matrix(log), config)
    h, w = config.horizon, config.window
    test_start = len(data.days) - h
    truth = data.counts[:, test_start:]
    arima = arima_forecast(data, config, progress)
    neural = (neural or DailyCountsModel(config)).fit(data, checkpoint=checkpoint)
    neural_forecast = neural.forecast(data, test_start)
    recent_mean = np.repeat(data.counts[:, test_start - w:test_start].mean(axis=1, keepdims=True), h, axis=1)
    week_before = data.counts[:, test_start - 7:test_start]
    seasonal = np.tile(week_before, (1, -(-h // 7)))[:, :h]
    metrics = {
        f"ARIMA{arima.order}": forecast_metrics(truth, arima.forecast),
        "neural (MLP, Poisson)": forecast_metrics(truth, neural_forecast),
        f"mean of last {w} days": forecast_metrics(truth, recent_mean),
        "same weekday last week": forecast_metrics(truth, seasonal),
    }
    return DailyCountsReport(len(data.users), len(data.days), [str(d) for d in data.days[test_start:]], metrics,
                             arima.order, arima.validation_mae, arima.arima_failures, neural.training_record_.best_epoch)


@dataclass(frozen=True)
class TimingResult:
    task: str  # "time-to-next" or "next-hour-bin"
    model: TimeToNextModel | NextHourBinModel  # fitted
    rows: dict[str, int]  # feature-table rows per part: train, valid, test
    test: dict[str, dict[str, float]]  # method -> its test metrics, the neural model first


def _compare(task: str, model: TimeToNextModel | NextHourBinModel, parts: tuple[FeatureTable, FeatureTable, FeatureTable],
             neural: str, score: Callable[[FeatureTable], Mapping[str, float]],
             baselines: Callable[[FeatureTable, FeatureTable], dict[str, dict[str, float]]],
             progress: ProgressReporter | None, checkpoint: str | Path | None) -> TimingResult:
    train, valid, test = parts
    model.fit(train, valid, progress=progress, checkpoint=checkpoint)
    return TimingResult(task, model, {"train": len(train), "valid": len(valid), "test": len(test)},
                        {neural: dict(score(test)), **baselines(train, test)})


def timing_gaps(log: EventLog, config: FeatureTableConfig | None = None, valid_ratio: float = 0.1, test_ratio: float = 0.1,
                progress: ProgressReporter | None = None, checkpoint: str | Path | None = None) -> TimingResult:
    """Time to each user's next event on a temporal split (`gap_split`): MAE/RMSE against the baselines.
    `checkpoint` makes the training resumable (TimeToNextModel.fit); the fitted model is `result.model`."""
    model = TimeToNextModel(config or FeatureTableConfig())
    parts = gap_split(model.features(log), log, valid_ratio, test_ratio)
    return _compare("time-to-next", model, parts, "neural (MLP, L1 on log-seconds)",
                    lambda test: gap_metrics(test.target, model.predict_seconds(test)), gap_baselines, progress,
                    checkpoint)


def timing_hour_bin(log: EventLog, config: FeatureTableConfig | None = None, progress: ProgressReporter | None = None,
                    checkpoint: str | Path | None = None) -> TimingResult:
    """The next event's 3-hour bin on the published split, else leave-one-out (`hour_bin_split`): accuracy
    and macro recall against the baselines. `checkpoint` makes the training resumable (NextHourBinModel.fit)."""
    model = NextHourBinModel(config or FeatureTableConfig())
    parts = hour_bin_split(model.features(log), log)
    return _compare("next-hour-bin", model, parts, "neural (MLP, softmax)",
                    lambda test: hour_bin_metrics(model.predict_proba(test), test.target), hour_bin_baselines,
                    progress, checkpoint)
