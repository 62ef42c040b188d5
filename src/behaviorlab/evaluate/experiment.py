"""`behaviorlab experiment` as library calls: a real log in, the training-scenario cells and summary out.

`experiment_setting` splits the real log the one way every command does (`sequences.make_split`'s default:
the dataset's own split, else leave-one-out) and, for an environment shift, keeps the training scene
(`evaluate.shift`); `experiment` runs the grid on it (`scenarios.run_experiment`) with the LLM runs given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorlab.evaluate.scenarios import (
    LLM_SOURCES,
    CellResult,
    ExperimentConfig,
    SyntheticRun,
    run_experiment,
    summarise,
)
from behaviorlab.evaluate.shift import SceneCounts, Shift, Unit, named_shift, scene_oracle, scene_split
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import EventLog
from behaviorlab.sequences import SequenceSplit, make_split, split_rule


@dataclass(frozen=True)
class ExperimentSetting:
    """The real data of an experiment: its split, the oracle's training data and the shift (None: none)."""

    split: SequenceSplit
    oracle: EventLog  # all the real training data the setting withholds
    unit: Unit = "events"  # what a user is: "sequences" for a log with its own split (see evaluate.shift)
    shift: Shift | None = None
    counts: SceneCounts | None = None  # with a shift: what the training scene kept of each part


@dataclass(frozen=True)
class ExperimentResult:
    config: ExperimentConfig  # as run: the shift's title and the default sources filled in
    cells: list[CellResult]
    summary: list[dict[str, Any]]  # `summarise` rows by fraction, real only first, the oracle last


def experiment_setting(real: EventLog, shift: str | None = None) -> ExperimentSetting:
    """The split of `real` and, with a named `shift` (night, weekend), its training-scene part; a log with
    its own split has short sequences as users (the shift keeps whole sequences), another keeps events."""
    rule = split_rule(real)
    split, unit = make_split(real, rule), "sequences" if rule == "published" else "events"
    if shift is None:
        return ExperimentSetting(split, split.train, unit)
    scene = named_shift(shift)
    shifted, counts = scene_split(split, scene, unit)
    return ExperimentSetting(shifted, scene_oracle(split, scene, unit), unit, scene, counts)


def experiment_config(config: ExperimentConfig, setting: ExperimentSetting,
                      runs: Sequence[SyntheticRun] = ()) -> ExperimentConfig:
    """`config` for this setting: a shift names the experiment; sources not chosen are the LLM sources of
    `runs` (grounded, ungrounded) and Markov."""
    update: dict[str, Any] = {}
    if setting.shift is not None:
        update["title"] = f"Environment shift: {setting.shift.description}"
    if "sources" not in config.model_fields_set:
        update["sources"] = (*(s for s in LLM_SOURCES if any(run.source == s for run in runs)), "markov")
    return config.model_copy(update=update) if update else config


def experiment(setting: ExperimentSetting, config: ExperimentConfig | None = None, runs: Sequence[SyntheticRun] = (), *,
               results_path: str | Path | None = None, progress: ProgressReporter | None = None,
               engine: str = "local") -> ExperimentResult:
    """Every cell of the grid on `setting` (cells saved in `results_path` are kept, new ones added), and the
    summary of `config.metric`: gains with intervals over seeds, the gap closed towards the oracle, the wins.
    `engine` computes the cells: "local" (this process) or "ray" (Ray tasks; see generate.engine)."""
    config = experiment_config(config or ExperimentConfig(), setting, runs)
    cells = run_experiment(setting.split, runs, config, oracle=setting.oracle, results_path=results_path, progress=progress,
                           engine=engine)
    rows = sorted(summarise(cells, config.metric), key=lambda r: (r["fraction"], r["scenario"] != "real_only",
                                                                  r["source"] == "oracle"))
    return ExperimentResult(config, cells, rows)
