"""Environment-shift split: the scene of a sequence is the hour bin of its last (predicted) event."""

from __future__ import annotations

import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.shift import scene_split
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
