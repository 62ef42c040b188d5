"""The timing tasks as library calls: the split, the fit and the test rows beside the baselines."""

from __future__ import annotations

from tests.models.test_time_to_next import FAST, routine_log

from behaviorlab.evaluate.timing import gap_baselines, gap_metrics, gap_split, timing_gaps, timing_hour_bin
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
