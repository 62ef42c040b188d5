"""Environment shift (IoTGen/SmartGen's setting): train in one scene, test in another.

A sequence belongs to the scene of the event to be predicted (its last event). For SmartThings FR:
train on sequences whose 10th event is in the day bins 06-18h, test on sequences whose 10th event is
at night. Validation keeps the training scene, because in this setting no data of the test scene is
available for model choice; the test scene is only seen when reporting. Synthetic data for the test
scene must then come from somewhere else: an LLM told "it is night now". The oracle of the setting
(`scene_oracle`) is what it withholds: the real training sequences of both scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from behaviorlab.errors import EvaluationError
from behaviorlab.schema import USER, EventLog
from behaviorlab.sequences import NextEventExamples, SequenceSplit

DAY_BINS: tuple[str, ...] = ("(6~9)", "(9~12)", "(12~15)", "(15~18)")
NIGHT_BINS: tuple[str, ...] = ("(18~21)", "(21~24)", "(0~3)", "(3~6)")


@dataclass(frozen=True)
class SceneCounts:
    """How many sequences/examples each part kept, out of how many."""

    train: tuple[int, int]
    valid: tuple[int, int]
    test: tuple[int, int]


def _last_event_in(log: EventLog, column: str, values: Sequence[str]) -> EventLog:
    last = (log.frame.sort([USER, log.time_column], maintain_order=True)
            .group_by(USER, maintain_order=True).agg(pl.col(column).last()))
    keep = last.filter(pl.col(column).is_in(list(values))).get_column(USER)
    return log.filter(pl.col(USER).is_in(keep.to_list()))


def _examples_in(examples: NextEventExamples, column: str, values: Sequence[str]) -> NextEventExamples:
    if column not in examples.context:
        raise EvaluationError(f"The prediction examples carry no '{column}' context for their targets",
                              hint=f"Build the split with context_columns including '{column}'.")
    wanted = set(values)
    keep = [i for i, value in enumerate(examples.context[column]) if value in wanted]
    return NextEventExamples(
        [examples.user_ids[i] for i in keep], [examples.histories[i] for i in keep], [examples.targets[i] for i in keep],
        {name: [vals[i] for i in keep] for name, vals in examples.context.items()},
    )


def scene_split(split: SequenceSplit, column: str = "hour_bin", train_scene: Sequence[str] = DAY_BINS,
                test_scene: Sequence[str] = NIGHT_BINS) -> tuple[SequenceSplit, SceneCounts]:
    """Train (and validate) on sequences whose last event's `column` is in `train_scene`; test on test
    examples whose target is in `test_scene`."""
    if column not in split.train.frame.columns:
        raise EvaluationError(f"The training log has no '{column}' column", hint="Choose a column that names the scene.")
    if set(train_scene) & set(test_scene):
        raise EvaluationError("The training and test scenes overlap", hint="Give disjoint values for the two scenes.")
    train = _last_event_in(split.train, column, train_scene)
    valid = _examples_in(split.valid, column, train_scene)
    test = _examples_in(split.test, column, test_scene)
    if not train.n_events or not len(test):
        raise EvaluationError(f"The scene split is empty: {train.n_users} training sequences, {len(test)} test examples",
                              hint="Check the scene values against the column's values.")
    counts = SceneCounts((train.n_users, split.train.n_users), (len(valid), len(split.valid)), (len(test), len(split.test)))
    return SequenceSplit(train, valid, test), counts


def scene_oracle(split: SequenceSplit, column: str = "hour_bin", train_scene: Sequence[str] = DAY_BINS,
                 test_scene: Sequence[str] = NIGHT_BINS) -> EventLog:
    """The real training sequences of the training scene and of the test scene: what a model trained with the
    target environment's own real data would see (the upper end of the gap synthetic data can close)."""
    return _last_event_in(split.train, column, (*train_scene, *test_scene))
