"""Environment shift (IoTGen/SmartGen's setting): train in one scene, test in another.

A shift names a context column and two disjoint scenes of its values: `night` (hour bin: train on the day
bins 06-18h, test on 18-06h) and `weekend` (weekday: train on Monday..Friday, test on Saturday and Sunday).
Training data is kept by one of two units:
- "sequences" (logs of short sequences, SmartThings): a sequence belongs to the scene of the event to be
  predicted (its last event), and whole sequences are kept;
- "events" (long per-user logs, Foursquare): the training events of the training scene are kept.
Validation keeps the training scene, because in this setting no data of the test scene is available for
model choice; the test scene is only seen when reporting. Synthetic data for the test scene must then come
from somewhere else: an LLM told the scene in words (the shift's `scenario` for `generate`). The oracle of
the setting (`scene_oracle`) is what it withholds: the real training data of both scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from behaviorlab.errors import EvaluationError
from behaviorlab.schema import USER, WEEKDAYS, EventLog
from behaviorlab.sequences import NextEventExamples, SequenceSplit

DAY_BINS: tuple[str, ...] = ("(6~9)", "(9~12)", "(12~15)", "(15~18)")
NIGHT_BINS: tuple[str, ...] = ("(18~21)", "(21~24)", "(0~3)", "(3~6)")
Unit = Literal["sequences", "events"]


@dataclass(frozen=True)
class Shift:
    name: str
    column: str  # the context column that names the scene
    train_scene: tuple[str, ...]
    test_scene: tuple[str, ...]
    scenario: str  # the `generate --scenario` that tells the LLM the test scene in words
    description: str  # for titles: what is trained on and what is tested

    def __post_init__(self) -> None:
        if set(self.train_scene) & set(self.test_scene):
            raise EvaluationError("The training and test scenes overlap", hint="Give disjoint values for the two scenes.")


SHIFTS: dict[str, Shift] = {
    "night": Shift("night", "hour_bin", DAY_BINS, NIGHT_BINS, "after-dark",
                   "trained on day scenes (06-18h), tested on evening and night (18-06h)"),
    "weekend": Shift("weekend", "weekday", WEEKDAYS[:5], WEEKDAYS[5:], "weekend",
                     "trained on working days, tested on the weekend"),
}


def named_shift(name: str) -> Shift:
    if name not in SHIFTS:
        raise EvaluationError(f"Unknown shift {name!r}", hint=f"Choose one of: {', '.join(SHIFTS)}.")
    return SHIFTS[name]


@dataclass(frozen=True)
class SceneCounts:
    """How many training sequences (users) / valid and test examples each part kept, out of how many."""

    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]


def _in_scene(log: EventLog, column: str, values: Sequence[str], unit: Unit) -> EventLog:
    if unit == "events":
        return log.filter(pl.col(column).is_in(list(values)))
    last = (log.frame.sort([USER, log.time_column], maintain_order=True)
            .group_by(USER, maintain_order=True).agg(pl.col(column).last()))
    keep = last.filter(pl.col(column).is_in(list(values))).get_column(USER)
    return log.filter(pl.col(USER).is_in(keep.to_list()))


def _examples_in(examples: NextEventExamples, column: str, values: Sequence[str]) -> NextEventExamples:
    if column not in examples.context:
        raise EvaluationError(f"The prediction examples carry no '{column}' context for their targets",
                              hint=f"Build the split with context_columns including '{column}'.")
    wanted = set(values)
    return examples.take([i for i, value in enumerate(examples.context[column]) if value in wanted])


def scene_split(split: SequenceSplit, shift: Shift = SHIFTS["night"], unit: Unit = "sequences"
                ) -> tuple[SequenceSplit, SceneCounts]:
    """Train (and validate) in the shift's training scene; test on test examples whose target is in its test scene."""
    if shift.column not in split.train.frame.columns:
        raise EvaluationError(f"The training log has no '{shift.column}' column, so the '{shift.name}' shift cannot "
                              "be made", hint=f"Choose a shift whose column the log has ({', '.join(SHIFTS)}).")
    train = _in_scene(split.train, shift.column, shift.train_scene, unit)
    valid = _examples_in(split.valid, shift.column, shift.train_scene)
    test = _examples_in(split.test, shift.column, shift.test_scene)
    if not train.n_events or not len(test):
        raise EvaluationError(f"The scene split is empty: {train.n_users} training sequences, {len(test)} test examples",
                              hint="Check the scene values against the column's values.")
    counts = SceneCounts((train.n_users, split.train.n_users), (len(valid), len(split.valid)), (len(test), len(split.test)))
    return SequenceSplit(train, valid, test), counts


def scene_oracle(split: SequenceSplit, shift: Shift = SHIFTS["night"], unit: Unit = "sequences") -> EventLog:
    """The real training data of the training scene and of the test scene: what a model trained with the target
    environment's own real data would see (the upper end of the gap synthetic data can close)."""
    return _in_scene(split.train, shift.column, (*shift.train_scene, *shift.test_scene), unit)
