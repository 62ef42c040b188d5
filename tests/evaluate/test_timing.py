"""The timing tasks: their splits and baselines by hand, and the library calls (split, fit, test rows beside the
baselines)."""

from __future__ import annotations

import numpy as np
import torch
from tests.models.test_daily_counts import log_from_counts, weekly_counts
from tests.models.test_time_to_next import FAST, bin_log, routine_log

from behaviorlab.evaluate.timing import (
    compare_forecasters,
    gap_baselines,
    gap_metrics,
    gap_split,
    hour_bin_baselines,
    hour_bin_split,
    timing_gaps,
    timing_hour_bin,
)
from behaviorlab.models.daily_counts import DailyCountsConfig, DailyCountsModel
from behaviorlab.models.time_to_next import TimeToNextModel, gap_table, hour_bin_table


def test_timing_gaps_is_the_split_fit_and_comparison_by_hand() -> None:
    log = routine_log(n_users=6, days=10)
    result = timing_gaps(log, FAST, 0.1, 0.2)
    model = TimeToNextModel(FAST)
    train, valid, test = gap_split(model.features(log), log, 0.1, 0.2)
    model.fit(train, valid)
    expected = {"neural (MLP, L1 on log-seconds)": gap_metrics(test.target, model.predict_seconds(test)),
                **gap_baselines(train, test)}
    assert result.task == "time-to-next" and result.rows == {"train": len(train), "valid": len(valid), "test": len(test)}
    assert result.test == expected and next(iter(result.test)).startswith("neural")  # same seed, same fit


def test_timing_hour_bin_uses_the_published_split(make_home_log) -> None:
    log = make_home_log(n_train=60, n_valid=20, n_test=30)
    result = timing_hour_bin(log, FAST)
    # every event of a training sequence but its first; one example per valid/test sequence (its last event)
    assert result.rows == {"train": 60 * 9, "valid": 20, "test": 30}
    assert set(result.test) == {"neural (MLP, softmax)", "majority bin", "previous event's bin"}
    assert all(0.0 <= row["accuracy"] <= 1.0 for row in result.test.values())


def test_timing_gaps_trains_through_a_checkpoint_to_the_same_result(tmp_path) -> None:
    log = routine_log(n_users=6, days=10)
    plain = timing_gaps(log, FAST, 0.1, 0.2)
    checkpoint = tmp_path / "checkpoint.pt"
    checked = timing_gaps(log, FAST, 0.1, 0.2, checkpoint=checkpoint)
    assert checkpoint.is_file() and checked.test == plain.test
    assert checked.model.training_record_ is not None  # the fitted model, for the caller to save


def test_compare_forecasters_fits_the_given_neural_model_in_place(tmp_path) -> None:
    counts = np.tile(np.array([[1, 2, 3, 4, 5, 6, 7]]), (2, 6))
    config = DailyCountsConfig(arima_orders=((1, 0, 0),), epochs=2)
    neural = DailyCountsModel(config)
    report = compare_forecasters(log_from_counts(counts), config, neural=neural, checkpoint=tmp_path / "checkpoint.pt")
    assert (tmp_path / "checkpoint.pt").is_file() and neural.training_record_ is not None
    assert report.neural_best_epoch == neural.training_record_.best_epoch
    assert report.metrics == compare_forecasters(log_from_counts(counts), config).metrics  # same seed, same fit


def test_gap_split_assigns_rows_by_the_predicted_event():
    log = routine_log(n_users=3, days=10)
    table = gap_table(log, log.vocabulary, history=2)
    train, valid, test = gap_split(table, log, 0.1, 0.2)
    assert len(train) + len(valid) + len(test) == len(table)
    assert train.key.max() < valid.key.min() and valid.key.max() < test.key.min()


def test_hour_bin_split_by_hand():
    log = bin_log((2, 1, 1))
    train, valid, test = hour_bin_split(hour_bin_table(log, log.vocabulary, history=2), log)
    assert len(train) == 10 and len(valid) == 1 and len(test) == 1     # valid/test: the last event only
    assert set(test.users) == {"test-0"} and test.key.tolist() == [0]


def test_persistence_baseline_by_hand():
    log = bin_log((3, 1, 1))
    table = hour_bin_table(log, log.vocabulary, history=1)
    train, _, test = hour_bin_split(table, log)
    persistence = hour_bin_baselines(train, test)["previous event's bin"]["accuracy"]
    expected = float(test.categorical[0, 1] - 1 == test.target[0])
    assert persistence == expected


def test_neural_model_learns_the_weekly_rhythm():
    torch.set_num_threads(1)
    counts = weekly_counts()
    config = DailyCountsConfig(arima_orders=((1, 0, 0),), window=14,
                               epochs=150, batch_size=64, learning_rate=5e-3, patience=15)
    report = compare_forecasters(log_from_counts(counts), config)
    metrics = report.metrics
    assert set(metrics) == {"ARIMA(1, 0, 0)", "neural (MLP, Poisson)", "mean of last 14 days", "same weekday last week"}
    assert report.users == 16 and report.test_days[0] == "2024-03-04" and len(report.test_days) == 7
    neural = metrics["neural (MLP, Poisson)"]["MAE"]
    assert neural < 0.7 * metrics["mean of last 14 days"]["MAE"]
    assert neural < metrics["ARIMA(1, 0, 0)"]["MAE"]


def test_seasonal_baseline_is_exact_on_a_periodic_series():
    counts = np.tile(np.array([[1, 2, 3, 4, 5, 6, 7]]), (2, 6))
    config = DailyCountsConfig(arima_orders=((1, 0, 0),), epochs=1)
    report = compare_forecasters(log_from_counts(counts), config)
    assert report.metrics["same weekday last week"] == {"MAE": 0.0, "RMSE": 0.0}
