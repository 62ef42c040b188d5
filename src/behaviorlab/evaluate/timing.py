"""`behaviorlab timing gaps` and `timing hour-bin` as library calls: split, fit on train (early stopping on
valid), score the test part once beside the baselines measured the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from behaviorlab.models.time_to_next import (
    FeatureTable,
    NextHourBinModel,
    TimeToNextModel,
    WindowConfig,
    gap_baselines,
    gap_metrics,
    gap_split,
    hour_bin_baselines,
    hour_bin_metrics,
    hour_bin_split,
)
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import EventLog


@dataclass(frozen=True)
class TimingResult:
    task: str  # "time-to-next" or "next-hour-bin"
    model: TimeToNextModel | NextHourBinModel  # fitted
    rows: dict[str, int]  # feature-table rows per part: train, valid, test
    test: dict[str, dict[str, float]]  # method -> its test metrics, the neural model first


def _compare(task: str, model: TimeToNextModel | NextHourBinModel, parts: tuple[FeatureTable, FeatureTable, FeatureTable],
             neural: str, score: Callable[[FeatureTable], Mapping[str, float]],
             baselines: Callable[[FeatureTable, FeatureTable], dict[str, dict[str, float]]],
             progress: ProgressReporter | None) -> TimingResult:
    train, valid, test = parts
    model.fit(train, valid, progress=progress)
    return TimingResult(task, model, {"train": len(train), "valid": len(valid), "test": len(test)},
                        {neural: dict(score(test)), **baselines(train, test)})


def timing_gaps(log: EventLog, config: WindowConfig | None = None, valid_ratio: float = 0.1, test_ratio: float = 0.1,
                progress: ProgressReporter | None = None) -> TimingResult:
    """Time to each user's next event on a temporal split (`gap_split`): MAE/RMSE against the baselines."""
    model = TimeToNextModel(config or WindowConfig())
    parts = gap_split(model.features(log), log, valid_ratio, test_ratio)
    return _compare("time-to-next", model, parts, "neural (MLP, L1 on log-seconds)",
                    lambda test: gap_metrics(test.target, model.predict_seconds(test)), gap_baselines, progress)


def timing_hour_bin(log: EventLog, config: WindowConfig | None = None,
                    progress: ProgressReporter | None = None) -> TimingResult:
    """The next event's 3-hour bin on the published split, else leave-one-out (`hour_bin_split`): accuracy
    and macro recall against the baselines."""
    model = NextHourBinModel(config or WindowConfig())
    parts = hour_bin_split(model.features(log), log)
    return _compare("next-hour-bin", model, parts, "neural (MLP, softmax)",
                    lambda test: hour_bin_metrics(model.predict_proba(test), test.target), hour_bin_baselines, progress)
