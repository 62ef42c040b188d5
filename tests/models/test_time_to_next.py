"""Time-to-next regression and next-hour-bin classification: features, learning, save/load (their splits and
baselines: tests/evaluate/test_timing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from behaviorlab.errors import DataError
from behaviorlab.evaluate.timing import (
    gap_baselines,
    gap_metrics,
    gap_split,
    hour_bin_baselines,
    hour_bin_metrics,
    hour_bin_split,
)
from behaviorlab.models.time_to_next import (
    FeatureTableConfig,
    NextHourBinModel,
    TimeToNextModel,
    gap_table,
    hour_bin_table,
)
from behaviorlab.schema import HOUR_BINS, EventLog, Schema, Vocabulary

START = datetime(2024, 1, 1, tzinfo=UTC)
# After each action the next event follows after about this many seconds.
TYPICAL_GAP = {"wake": 600.0, "coffee": 1800.0, "leave": 9 * 3600.0, "return": 4 * 3600.0, "sleep": 8 * 3600.0}
ROUTINE = ["wake", "coffee", "leave", "return", "sleep"]
FAST = FeatureTableConfig(history=2, hidden=32, epochs=40, batch_size=64, learning_rate=5e-3, patience=5)


def timed_log(rows: list[tuple[str, float, str]]) -> EventLog:
    users, seconds, actions = zip(*rows, strict=True)
    frame = pl.DataFrame({"user_id": list(users), "timestamp": [START + timedelta(seconds=s) for s in seconds],
                          "action": list(actions)}).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    return EventLog(frame, Schema(name="timed"))


def routine_log(n_users: int = 12, days: int = 20, seed: int = 0) -> EventLog:
    """Users repeat ROUTINE; each gap is TYPICAL_GAP of the action times a lognormal factor."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        clock = float(rng.uniform(0, 3600))
        for _ in range(days):
            for action in ROUTINE:
                rows.append((f"u{u}", clock, action))
                clock += TYPICAL_GAP[action] * float(rng.lognormal(0.0, 0.2))
    return timed_log(rows)


def test_gap_table_by_hand():
    log = timed_log([("u", 0, "a"), ("u", 60, "b"), ("u", 180, "a"), ("u", 3780, "c"), ("v", 10, "b")])
    table = gap_table(log, log.vocabulary, history=2)
    ids = {a: log.vocabulary.id_of(a) for a in "abc"}
    assert table.target.tolist() == [60.0, 120.0, 3600.0]                     # v has no next event
    assert table.categorical[:, 0].tolist() == [ids["a"], ids["b"], ids["a"]]  # the current action
    assert table.categorical[:, 1].tolist() == [0, ids["a"], ids["b"]]         # the one before (0 = none)
    gaps, missing = table.numeric[:, :2], table.numeric[:, 2:4]
    assert gaps[:, 0] == pytest.approx([0.0, np.log1p(60), np.log1p(120)])
    assert missing[:, 0].tolist() == [1.0, 0.0, 0.0] and missing[:, 1].tolist() == [1.0, 1.0, 0.0]
    assert table.numeric[:, 4] == pytest.approx([0.0, np.log1p(60), (np.log1p(60) + np.log1p(120)) / 2])


def test_learns_action_dependent_gaps_and_round_trips(tmp_path):
    torch.set_num_threads(1)
    log = routine_log()
    model = TimeToNextModel(FAST)
    train, valid, test = gap_split(model.features(log), log)
    model.fit(train, valid)
    ours = gap_metrics(test.target, model.predict_seconds(test))
    baselines = gap_baselines(train, test)
    assert ours["MAE_hours"] < 0.5 * baselines["global median"]["MAE_hours"]
    assert ours["MAE_hours"] < 0.5 * baselines["user median"]["MAE_hours"]
    model.save(tmp_path / "gaps")
    loaded = TimeToNextModel.load(tmp_path / "gaps")
    assert np.array_equal(loaded.predict_seconds(test), model.predict_seconds(test))
    with pytest.raises(Exception, match="not 'next-hour-bin'|next-hour-bin"):
        NextHourBinModel.load(tmp_path / "gaps")


def test_time_to_next_needs_timestamps(make_home_log):
    with pytest.raises(DataError, match="timestamps"):
        TimeToNextModel().features(make_home_log(n_train=5, n_valid=2, n_test=2))


def bin_log(n_per_split: tuple[int, int, int] = (300, 60, 60), seed: int = 0) -> EventLog:
    """Sequences of 6 events; the hour bin of each event is set by the action before it."""
    rng = np.random.default_rng(seed)
    next_bin = {"tv": "(18~21)", "coffee": "(6~9)", "lamp": "(21~24)", "door": "(9~12)"}
    actions = sorted(next_bin)
    rows: dict[str, list] = {"user_id": [], "position": [], "action": [], "hour_bin": [], "weekday": [], "split": []}
    for split, count in zip(("train", "valid", "test"), n_per_split, strict=True):
        for s in range(count):
            previous = None
            for t in range(6):
                action = actions[int(rng.integers(len(actions)))]
                rows["user_id"].append(f"{split}-{s}")
                rows["position"].append(t)
                rows["action"].append(action)
                rows["hour_bin"].append(next_bin[previous] if previous else HOUR_BINS[int(rng.integers(8))])
                rows["weekday"].append("Mon")
                rows["split"].append(split)
                previous = action
    schema = Schema(name="bins", time="position", extras={"hour_bin": "str", "weekday": "str", "split": "str"})
    return EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema, Vocabulary.from_actions(actions))


def test_hour_bin_table_by_hand():
    log = bin_log((2, 1, 1))
    table = hour_bin_table(log, log.vocabulary, history=2)
    assert len(table) == 4 * 5                                    # every event after the first
    first = log.frame.filter(pl.col("user_id") == "train-0")
    row = 0  # train-0, event 1: lag-1 = event 0, lag-2 = none
    assert table.categorical[row, 0] == log.vocabulary.id_of(first["action"][0]) and table.categorical[row, 1] == 0
    assert table.categorical[row, 2] == HOUR_BINS.index(first["hour_bin"][0]) + 1
    assert table.target[row] == HOUR_BINS.index(first["hour_bin"][1])


def test_hour_bin_model_learns_and_beats_baselines(tmp_path):
    torch.set_num_threads(1)
    log = bin_log()
    model = NextHourBinModel(FAST)
    train, valid, test = hour_bin_split(model.features(log), log)
    model.fit(train, valid)
    probabilities = model.predict_proba(test)
    assert probabilities.shape == (len(test), 8) and np.allclose(probabilities.sum(axis=1), 1.0)
    ours = hour_bin_metrics(probabilities, test.target)
    baselines = hour_bin_baselines(train, test)
    assert ours["accuracy"] > 0.95
    assert ours["accuracy"] > baselines["majority bin"]["accuracy"] + 0.4
    model.save(tmp_path / "bins")
    assert np.array_equal(NextHourBinModel.load(tmp_path / "bins").predict_proba(test), probabilities)


def test_hour_bin_needs_the_column():
    with pytest.raises(DataError, match="hour_bin"):
        NextHourBinModel().features(routine_log(n_users=2, days=2))
