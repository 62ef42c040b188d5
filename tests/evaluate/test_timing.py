"""The timing tasks as library calls: the split, the fit and the test rows beside the baselines."""

from __future__ import annotations

import numpy as np
from tests.models.test_daily_counts import log_from_counts
from tests.models.test_time_to_next import FAST, routine_log

from behaviorlab.evaluate.timing import (
    compare_forecasters,
    gap_baselines,
    gap_metrics,
    gap_split,
    timing_gaps,
    timing_hour_bin,
)
from behaviorlab.models.daily_counts import DailyCountsConfig, DailyCountsModel
from behaviorlab.models.time_to_next import TimeToNextModel


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
