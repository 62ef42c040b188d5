"""Environment-shift split: the scene of a sequence is the hour bin of its last (predicted) event."""

from __future__ import annotations

import polars as pl
import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.shift import SHIFTS, Shift, named_shift, scene_oracle, scene_split
from behaviorlab.schema import EventLog
from behaviorlab.sequences import NextEventExamples, SequenceSplit


def test_scene_split_keeps_day_training_and_night_test(sequences_log) -> None:
    train = sequences_log([["a", "b"], ["b", "c"], ["c", "a"]],
                     hour_bins=[["(0~3)", "(6~9)"], ["(6~9)", "(21~24)"], ["(21~24)", "(12~15)"]])
    valid = NextEventExamples(["v0", "v1"], [["a"], ["b"]], ["b", "c"], {"hour_bin": ["(9~12)", "(0~3)"]})
    test = NextEventExamples(["t0", "t1", "t2"], [["a"], ["b"], ["c"]], ["b", "c", "a"],
                             {"hour_bin": ["(3~6)", "(15~18)", "(18~21)"]})
    shifted, counts = scene_split(SequenceSplit(train, valid, test))
    assert sorted(shifted.train.users()) == ["u0", "u2"]  # last events at 6-9h and 12-15h
    assert shifted.valid.user_ids == ["v0"]
    assert shifted.test.user_ids == ["t0", "t2"] and shifted.test.context["hour_bin"] == ["(3~6)", "(18~21)"]
    assert counts.train == (2, 3) and counts.valid == (1, 2) and counts.test == (2, 3)


def test_scene_split_needs_target_context(sequences_log) -> None:
    train = sequences_log([["a", "b"]], hour_bins=[["(6~9)", "(6~9)"]])
    examples = NextEventExamples(["t"], [["a"]], ["b"])
    with pytest.raises(EvaluationError):
        scene_split(SequenceSplit(train, examples, examples))


def test_weekend_shift_keeps_working_day_events_of_long_user_logs(sequences_log) -> None:
    """Per-user logs (unit "events"): the training events of working days stay, whatever the user's last event."""
    base = sequences_log([["a", "b", "c"], ["b", "c"]])
    schema = base.schema.model_copy(update={"extras": {"weekday": "str"}})
    train = EventLog(base.frame.with_columns(weekday=pl.Series(["Mon", "Sat", "Tue", "Sun", "Fri"])), schema,
                     base.vocabulary)
    valid = NextEventExamples(["v0", "v1"], [["a"], ["b"]], ["b", "c"], {"weekday": ["Wed", "Sun"]})
    test = NextEventExamples(["t0", "t1"], [["a"], ["b"]], ["b", "c"], {"weekday": ["Sat", "Thu"]})
    split = SequenceSplit(train, valid, test)
    shifted, counts = scene_split(split, SHIFTS["weekend"], unit="events")
    assert shifted.train.frame.get_column("weekday").to_list() == ["Mon", "Tue", "Fri"]
    assert shifted.valid.user_ids == ["v0"] and shifted.test.user_ids == ["t0"]
    assert counts.train == (2, 2)
    assert scene_oracle(split, SHIFTS["weekend"], unit="events").n_events == 5
    # unit "sequences": a user belongs to the scene of its last event (u0 ends on Tue, u1 on Fri... both working days)
    assert scene_split(split, SHIFTS["weekend"])[0].train.n_events == 5


def test_shifts_refuse_what_they_cannot_do(sequences_log) -> None:
    with pytest.raises(EvaluationError, match="Unknown shift 'dawn'"):
        named_shift("dawn")
    with pytest.raises(EvaluationError, match="overlap"):
        Shift("bad", "weekday", ("Mon",), ("Mon", "Sun"), "weekend", "")
    train = sequences_log([["a", "b"]], hour_bins=[["(6~9)", "(6~9)"]])
    examples = NextEventExamples(["t"], [["a"]], ["b"], {"hour_bin": ["(6~9)"]})
    with pytest.raises(EvaluationError, match="no 'weekday' column"):
        scene_split(SequenceSplit(train, examples, examples), SHIFTS["weekend"])
