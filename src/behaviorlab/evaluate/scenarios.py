"""The experiment grid: training scenarios x synthetic sources x real-data fractions x seeds, read honestly.

The protocol (DESIGN rule 6):
- No leakage. For each (fraction, seed) a random subset of the real training users is drawn (the same
  subset for every source and scenario), and every synthetic source is grounded on that subset only:
  "markov" is sampled from a chain fitted to it (`baselines.markov_synthetic`, with the LLM run's
  sequence lengths, or the subset's own lengths when there is no LLM run), and "llm" takes the generation
  run whose manifest records that subset's digest (`EventLog.digest`); so does "llm_ungrounded", the
  ablation generated from the subset's profiles and the scenario without any real record in its prompts.
  A cell without such a run is refused rather than paired with a run grounded on other data
  (`pair_runs`); `write_subsets` writes each cell's subset for `behaviorlab generate --data` to ground on,
  and `evaluate.cell_runs` generates the runs itself.
- An oracle row per (fraction, seed): real only, trained on the real data the setting withholds (by
  default all the real training data; for an environment shift, the target scene's as well).
- Paired seeds. Every gain is read seed by seed against real only of the same fraction and seed, with a
  95% t-interval over seeds, beside the share of the gap to the oracle it closes and whether it beats
  the Markov source and the real->real control (`summarise`).
Every trained model is scored once on the real test examples. Finished cells are saved after each one,
so an interrupted experiment resumes where it stopped; the model fitted on each real subset (the start
of the real-only, oracle and fine-tuning scenarios) is fitted once and kept beside the results.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.atomic import exclusive_writer, write_text_atomic
from behaviorlab.config import StrictConfig
from behaviorlab.errors import EvaluationError, Problem
from behaviorlab.evaluate.baselines import MarkovBaselineConfig, markov_synthetic
from behaviorlab.evaluate.utility import (
    REAL_ONLY_SCENARIOS,
    STARTS_FROM_REAL,
    TRAINING_SCENARIOS,
    ModelFactory,
    TrainingScenario,
    align_synthetic,
    check_scenarios,
    train_scenario,
)
from behaviorlab.generate.run_files import read_run
from behaviorlab.models.base import NextBehaviorModel
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import USER, EventLog, digest
from behaviorlab.sequences import NextEventExamples, SequenceSplit

Source = Literal["llm", "llm_ungrounded", "markov"]
# LLM runs, told apart by their manifest: "llm_ungrounded" is the ablation generated from profile and
# scenario only (`generate --grounding none`), which shows what grounding on real data is worth.
LLM_SOURCES: tuple[Source, ...] = ("llm", "llm_ungrounded")
# 2: cells record the digest of their real data, every (fraction, seed) has an oracle row, the summary has
# intervals, the gap closed and the win rule. Files of version 1 lack all that and are refused, not mixed in.
RESULTS_VERSION = 2
ORACLE = "oracle"  # the source of the oracle rows: real only, trained on the real data the setting withholds
CONTROL = ("none", "real_continued")  # the real->real control: a second stage, no synthetic data
START_OVER = "Choose another output path, or delete the file to start over."


class ExperimentConfig(StrictConfig):
    title: str = "Training scenarios"  # names the experiment in tables and reports
    predictor: str = "gru4rec"  # a name from models.registry
    predictor_settings: dict[str, Any] = Field(default_factory=dict)  # config overrides (seed is set per run)
    fractions: tuple[float, ...] = (0.1, 0.25, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    scenarios: tuple[TrainingScenario, ...] = TRAINING_SCENARIOS
    sources: tuple[Source, ...] = ("llm", "markov")
    ks: tuple[int, ...] = (1, 5, 10)
    metric: str = "NDCG@10"  # the summary's headline metric
    markov: MarkovBaselineConfig = Field(default_factory=MarkovBaselineConfig)
    # Markov sequences per cell when no LLM log sets the count (None: as many as the real subset has).
    markov_sequences: int | None = Field(None, ge=1)


@dataclass(frozen=True)
class SyntheticRun:
    """An LLM generation run offered to the experiment: its synthetic log and the digest of the real log
    it was grounded on (None when the run does not record one, e.g. a bare Parquet file)."""

    name: str  # where it came from, for messages
    log: EventLog
    grounding_digest: str | None
    source: Source = "llm"  # "llm_ungrounded" for a run generated without grounding


def experiment_runs(paths: Sequence[str | Path]) -> list[SyntheticRun]:
    """Generation runs (directories or synthetic Parquet files) as the experiment takes them: log, grounding
    digest, and source ("llm", or "llm_ungrounded" for a run generated without grounding)."""
    runs = [(path, read_run(path)) for path in paths]
    return [SyntheticRun(str(path), run.synthetic, run.grounding_digest, "llm" if run.grounded else "llm_ungrounded")
            for path, run in runs]


@dataclass(frozen=True)
class CellResult:
    source: str  # "none" for real only and the control, "oracle" for the oracle
    scenario: str
    fraction: float
    seed: int
    metrics: dict[str, float]
    real_sequences: int
    synthetic_sequences: int
    data_digest: str = ""  # identifies the synthetic data the cell trained on ("" for real only)
    real_digest: str = ""  # the real data the cell (and its synthetic sources) saw: the oracle's for the oracle

    @property
    def key(self) -> str:
        return cell_key(self.source, self.scenario, self.fraction, self.seed)


@dataclass(frozen=True)
class SubsetFile:
    """One real training subset written for `generate` to ground on, and the (fraction, seed) cells it serves."""

    path: Path
    cells: tuple[tuple[float, int], ...]
    digest: str
    users: int
    events: int


def cell_key(source: str, scenario: str, fraction: float, seed: int) -> str:
    return f"{source}|{scenario}|{fraction}|{seed}"


def subsample_users(log: EventLog, fraction: float, seed: int) -> EventLog:
    """A seeded random share of the users with all their events (at least one user)."""
    if not 0 < fraction <= 1:
        raise EvaluationError(f"Fractions must be in (0, 1], got {fraction}")
    if fraction == 1:
        return log
    users = sorted(log.users())
    size = max(1, round(len(users) * fraction))
    chosen = [users[i] for i in np.random.default_rng(seed).choice(len(users), size, replace=False)]
    return log.filter(pl.col(USER).is_in(chosen))


def cell_subsets(split: SequenceSplit, config: ExperimentConfig) -> dict[tuple[float, int], EventLog]:
    """The real training subset of every (fraction, seed) cell, fractions outer, seeds inner."""
    return {(f, s): subsample_users(split.train, f, s) for f in config.fractions for s in config.seeds}


@dataclass(frozen=True)
class DistinctSubset:
    """One distinct real training subset of a grid (at 100% every seed has the whole training log) and its cells."""

    name: str  # "real-0.1-seed0", or "real-1" for the whole training log
    log: EventLog
    cells: tuple[tuple[float, int], ...]


def distinct_subsets(split: SequenceSplit, config: ExperimentConfig) -> list[DistinctSubset]:
    groups: dict[str, list[tuple[float, int]]] = {}
    logs: dict[str, EventLog] = {}
    for cell, log in cell_subsets(split, config).items():
        digest = log.digest()
        groups.setdefault(digest, []).append(cell)
        logs.setdefault(digest, log)
    subsets = []
    for digest, cells in groups.items():
        fraction, seed = cells[0]
        name = f"real-{fraction:g}" if fraction == 1 else f"real-{fraction:g}-seed{seed}"
        subsets.append(DistinctSubset(name, logs[digest], tuple(cells)))
    return subsets


def write_subsets(split: SequenceSplit, config: ExperimentConfig, directory: str | Path) -> list[SubsetFile]:
    """Write each distinct real training subset of the grid as Parquet, so that `behaviorlab generate --data FILE`
    grounds a run on exactly it."""
    from behaviorlab.datasets import write_event_log

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for subset in distinct_subsets(split, config):
        path = write_event_log(subset.log, directory / f"{subset.name}.parquet")
        files.append(SubsetFile(path, subset.cells, subset.log.digest(), subset.log.n_users, subset.log.n_events))
    return files


PAIRING_HINT = ("Write every cell's real subset with `behaviorlab experiment --real D --write-subsets DIR` (with the "
                "same --fractions, --seeds and --shift), generate one run from each file with `behaviorlab generate "
                "--data DIR/FILE --out RUN`, then pass every run: --synthetic RUN1 --synthetic RUN2 ... "
                "(or leave the LLM out: --sources markov).")


def pair_runs(runs: Sequence[SyntheticRun], subsets: Mapping[tuple[float, int], EventLog]
              ) -> dict[tuple[float, int], SyntheticRun]:
    """The LLM run of each cell: the one grounded on exactly that cell's real subset (same digest).

    Any other pairing would let the synthetic data carry real data the cell's real-only model never saw,
    so every mismatch is refused, all reported at once: a run that records no grounding, two runs of one
    subset, a run grounded on data of no cell, a cell without a run."""
    problems: list[Problem] = []
    by_digest: dict[str, SyntheticRun] = {}
    for run in runs:
        if run.grounding_digest is None:
            problems.append(Problem(f"{run.name} does not record the real data it was grounded on (a bare Parquet file, "
                                    "or a run from before the digest was kept: re-running its `generate` command "
                                    "rewrites its manifest)"))
        elif run.grounding_digest in by_digest:
            problems.append(Problem(f"{run.name} and {by_digest[run.grounding_digest].name} were grounded on the same "
                                    "subset: pass one of them"))
        else:
            by_digest[run.grounding_digest] = run
    wanted = {cell: log.digest() for cell, log in subsets.items()}
    problems += [Problem(f"{run.name} was grounded on real data that no cell of this grid trains on (digest {digest})")
                 for digest, run in by_digest.items() if digest not in wanted.values()]
    problems += [Problem(f"no run is grounded on the real subset of fraction {fraction:g}, seed {seed} "
                         f"({subsets[(fraction, seed)].n_users} users, {subsets[(fraction, seed)].n_events} events, "
                         f"digest {digest})")
                 for (fraction, seed), digest in wanted.items() if digest not in by_digest]
    if problems:
        raise EvaluationError("The LLM runs do not match the cells' real subsets:\n"
                              + "\n".join(f"  - {p}" for p in problems), hint=PAIRING_HINT)
    return {cell: by_digest[digest] for cell, digest in wanted.items()}


def _experiment_digest(config: ExperimentConfig, split: SequenceSplit, oracle: EventLog) -> str:
    """What every cell depends on besides its own synthetic data: the model, its settings, the real split
    and the oracle's data. The grid (fractions, seeds, scenarios, sources) may grow between runs; finished
    cells stay."""
    from behaviorlab.models.registry import model_class

    settings = config.model_dump(mode="json", include={"predictor", "ks", "markov"})
    # the model's whole config, defaults included: cells trained under other defaults are not resumed
    settings["model"] = model_class(config.predictor).config_class(**config.predictor_settings).model_dump(mode="json")
    return digest(json.dumps(settings, sort_keys=True), split.train.digest(), oracle.digest(),
                   "|".join(split.valid.targets), "|".join(split.test.targets))


def read_results(path: Path) -> dict[str, Any]:
    """A results file of this version (version, digest, config, cells, summary); any other is refused."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"{path} is not an experiment result file: {exc}", hint=START_OVER) from exc
    missing = [key for key in ("digest", "config", "cells", "summary") if key not in payload] \
        if isinstance(payload, dict) else ["everything"]
    if missing:
        raise EvaluationError(f"{path} is not an experiment result file: it lacks {', '.join(missing)}", hint=START_OVER)
    version = payload.get("version", 1)  # version 1 files had no version field
    if version != RESULTS_VERSION:
        raise EvaluationError(
            f"{path} holds results in format version {version}; this behaviorlab writes version {RESULTS_VERSION} "
            "(cells record their real subset, with oracle rows and intervals), so the old cells cannot be resumed",
            hint=START_OVER)
    return payload


def _load_cells(path: Path | None, digest: str) -> dict[str, CellResult]:
    if path is None or not path.is_file():
        return {}
    payload = read_results(path)
    if payload["digest"] != digest:
        raise EvaluationError(f"{path} holds results of a different experiment (model, settings or real data)",
                              hint=START_OVER)
    try:
        return {c.key: c for c in (CellResult(**cell) for cell in payload["cells"])}
    except TypeError as exc:
        raise EvaluationError(f"{path} is not an experiment result file: {exc}", hint=START_OVER) from exc


def _save_cells(path: Path | None, digest: str, config: ExperimentConfig, cells: Mapping[str, CellResult]) -> None:
    if path is None:
        return
    payload = {"version": RESULTS_VERSION, "digest": digest, "config": config.model_dump(mode="json"),
               "cells": [vars(c) for c in cells.values()], "summary": summarise(list(cells.values()), config.metric)}
    write_text_atomic(path, json.dumps(payload, indent=1))


def _trainings(config: ExperimentConfig) -> list[tuple[str, str]]:
    """(source, scenario) of the cells of one (fraction, seed): real only, the oracle, the control, the sources."""
    trainings = [("none", "real_only"), (ORACLE, "real_only")]
    trainings += [("none", s) for s in config.scenarios if s == "real_continued"]
    return trainings + [(source, scenario) for source in config.sources for scenario in config.scenarios
                        if scenario not in REAL_ONLY_SCENARIOS]


def run_experiment(split: SequenceSplit, runs: Sequence[SyntheticRun] = (), config: ExperimentConfig | None = None, *,
                   oracle: EventLog | None = None, results_path: str | Path | None = None,
                   progress: ProgressReporter | None = None, engine: str = "local") -> list[CellResult]:
    """Run every cell of the grid (skipping cells already saved in `results_path`) and return all cells.

    `runs` are the LLM generation runs; each cell takes the one grounded on its real subset (`pair_runs`).
    `oracle` is the real training data the setting withholds (default: `split.train`, all of it).
    `engine` ("local" or "ray", see generate.engine) computes the real-model fits, then the cells; this
    process alone writes them, so both engines write the same results file and resume each other's."""
    from behaviorlab.generate.engine import map_tasks

    config = config or ExperimentConfig()
    check_scenarios(config.scenarios)
    oracle = oracle if oracle is not None else split.train
    subsets = cell_subsets(split, config)
    # {source: {(fraction, seed): aligned log}} for each LLM source of the grid
    llm_logs = {source: _llm_logs(source, [r for r in runs if r.source == source], subsets, split.train)
                for source in LLM_SOURCES if source in config.sources}
    path = Path(results_path) if results_path is not None else None
    digest = _experiment_digest(config, split, oracle)
    # One writer per results file: two processes would train the same cells and overwrite each other.
    with exclusive_writer(path, "the experiment results") if path is not None else nullcontext():
        cells = _load_cells(path, digest)
        trainings = _trainings(config)
        order = [cell_key(source, scenario, fraction, seed) for fraction, seed in subsets for source, scenario in trainings]
        total = len(order)
        oracle_digest = oracle.digest()
        data: dict[str, EventLog] = {oracle_digest: oracle}  # every log a cell trains on, by digest, sent once
        todo: list[_Cell] = []
        for (fraction, seed), real in subsets.items():
            real_digest = real.digest()
            sources = _synthetic_sources(config, seed, real, {name: logs[(fraction, seed)] for name, logs in llm_logs.items()},
                                         split.train)
            data_digests = {name: log.digest() for name, log in sources.items()}
            data.update({real_digest: real} | {data_digests[name]: log for name, log in sources.items()})
            for source, scenario in trainings:
                key = cell_key(source, scenario, fraction, seed)
                if key in cells and cells[key].data_digest == data_digests.get(source, ""):
                    continue
                todo.append(_Cell(source, scenario, fraction, seed, oracle_digest if source == ORACLE else real_digest,
                                  data_digests.get(source, "")))
        grid = _Grid(config, split.valid, split.test, data)
        models_dir = path.parent / f".{path.stem}-models" / digest if path is not None else None
        starts = _real_fits(engine, grid, todo, models_dir)
        cpus = int(config.predictor_settings.get("threads") or 1)
        done = total - len(todo)
        jobs = [(cell, starts.get((cell.seen, cell.seed)) if cell.scenario in STARTS_FROM_REAL else None) for cell in todo]
        for _, result in map_tasks(engine, _train_cell, grid, jobs, cpus=cpus):
            cells[result.key] = result
            # in grid order, whichever order the cells finished in: every engine writes the same file
            cells = {key: cells[key] for key in order if key in cells} | cells
            _save_cells(path, digest, config, cells)
            done += 1
            if progress is not None:
                progress(done, total, {"cell": result.key, config.metric: result.metrics.get(config.metric, float("nan"))})
    return [cells[key] for key in order]


@dataclass(frozen=True)
class _Cell:
    """One cell to train: what it is, the digest of the real log it sees and of its synthetic log ("" for none)."""

    source: str
    scenario: str
    fraction: float
    seed: int
    seen: str
    synthetic: str


@dataclass(frozen=True)
class _Grid:
    """What every cell of a grid reads: the config, the validation and test examples, the logs by digest."""

    config: ExperimentConfig
    valid: NextEventExamples
    test: NextEventExamples
    logs: Mapping[str, EventLog]

    def make_model(self, seed: int) -> ModelFactory:
        from behaviorlab.models.registry import create_model

        return partial(create_model, self.config.predictor, **{**self.config.predictor_settings, "seed": seed})


def _fit_real(grid: _Grid, fit: tuple[str, int]) -> NextBehaviorModel:
    """The model fitted on one real log (by digest) with one seed: the start of the real-only scenarios."""
    seen, seed = fit
    return grid.make_model(seed)().fit(grid.logs[seen], grid.valid)


def _real_fits(engine: str, grid: _Grid, todo: Sequence[_Cell], models_dir: Path | None
               ) -> dict[tuple[str, int], NextBehaviorModel]:
    """The fit of every (real log, seed) the cells to train start from, each fitted once. With a results file
    each is saved beside it as it finishes and read back from there, so a resumed experiment does not fit it
    again and every engine hands out the same saved model."""
    from behaviorlab.generate.engine import map_tasks
    from behaviorlab.models.registry import load_model

    needed = list(dict.fromkeys((cell.seen, cell.seed) for cell in todo if cell.scenario in STARTS_FROM_REAL))
    starts = {fit: load_model(models_dir / f"{fit[0]}-{fit[1]}") for fit in needed
              if models_dir is not None and (models_dir / f"{fit[0]}-{fit[1]}").is_dir()}
    missing = [fit for fit in needed if fit not in starts]
    cpus = int(grid.config.predictor_settings.get("threads") or 1)
    for index, model in map_tasks(engine, _fit_real, grid, missing, cpus=cpus):
        fit = missing[index]
        if models_dir is not None:
            model.save(models_dir / f"{fit[0]}-{fit[1]}")
            model = load_model(models_dir / f"{fit[0]}-{fit[1]}")
        starts[fit] = model
    return starts


def _train_cell(grid: _Grid, job: tuple[_Cell, NextBehaviorModel | None]) -> CellResult:
    """One cell trained as its scenario says (from a copy of its real fit, when it starts from one) and scored
    once on the real test examples."""
    from behaviorlab.metrics import ranking_report

    cell, start = job
    seen = grid.logs[cell.seen]
    synthetic = grid.logs[cell.synthetic] if cell.synthetic else None
    model = train_scenario(cell.scenario, grid.make_model(cell.seed), seen, synthetic, grid.valid,
                           fitted_on_real=copy.deepcopy(start) if start is not None else None)
    metrics = ranking_report(model, grid.test, grid.config.ks)
    return CellResult(cell.source, cell.scenario, cell.fraction, cell.seed, metrics, seen.n_users,
                      synthetic.n_users if synthetic is not None else 0, cell.synthetic, cell.seen)


def _llm_logs(source: Source, runs: Sequence[SyntheticRun], subsets: Mapping[tuple[float, int], EventLog],
              train: EventLog) -> dict[tuple[float, int], EventLog]:
    """Each cell's log of one LLM source, aligned to the real training log (each run aligned once)."""
    if not runs:
        how = " generated with `--grounding none`" if source == "llm_ungrounded" else ""
        raise EvaluationError(f"The '{source}' source needs generation runs{how}", hint=PAIRING_HINT)
    paired = pair_runs(runs, subsets)
    aligned: dict[str, EventLog] = {}  # by grounding digest, unique per run (pair_runs)
    for run in paired.values():
        if run.grounding_digest not in aligned:
            aligned[str(run.grounding_digest)] = align_synthetic(run.log, train)
    return {cell: aligned[str(run.grounding_digest)] for cell, run in paired.items()}


def _synthetic_sources(config: ExperimentConfig, seed: int, real: EventLog, llm_logs: Mapping[str, EventLog],
                       full_train: EventLog) -> dict[str, EventLog]:
    """The synthetic logs of one (fraction, seed) cell, aligned to the real training log: the cell's LLM logs
    and a Markov log as long as the grounded LLM log (else the first LLM log, else the real subset)."""
    sources: dict[str, EventLog] = dict(llm_logs)
    llm = next((llm_logs[name] for name in LLM_SOURCES if name in llm_logs), None)
    if "markov" in config.sources:
        lengths = (llm if llm is not None else real).frame.group_by(USER).len().sort(USER).get_column("len").to_list()
        if llm is None and config.markov_sequences is not None:  # the real subset's lengths, cycled
            lengths = [lengths[i % len(lengths)] for i in range(config.markov_sequences)]
        markov_config = config.markov.model_copy(update={"seed": config.markov.seed + seed})
        sources["markov"] = align_synthetic(markov_synthetic(real, lengths, markov_config), full_train)
    return sources


def t_interval(values: Sequence[float], level: float = 0.95) -> list[float] | None:
    """[low, high]: the t-interval of the mean over seeds; None with fewer than two values (an interval
    from one seed is undefined, never zero)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return [float(values.mean()) - half, float(values.mean()) + half]


def _relative_gains(by_seed: Mapping[int, float], reference: Mapping[int, float]) -> dict[int, float]:
    """{seed: value / reference - 1} over the seeds whose reference is known and not 0."""
    return {seed: value / reference[seed] - 1 for seed, value in by_seed.items() if reference.get(seed)}


def _paired(a: Mapping[int, float], b: Mapping[int, float] | None) -> list[float]:
    """Per-seed differences a - b over the seeds both have."""
    return [a[seed] - b[seed] for seed in a if b is not None and seed in b]


def _gap_closed(values: Mapping[int, float], real_only: Mapping[int, float], oracle: Mapping[int, float] | None
                ) -> tuple[float | None, str]:
    """(mean - real_only mean) / (oracle mean - real_only mean) over the seeds all three have, with a note
    when it is undefined: no oracle, or an oracle no better than real only (no gap to close; e.g. at 100%
    real data, where the oracle is real only)."""
    seeds = [s for s in values if s in real_only and oracle is not None and s in oracle]
    if not seeds:
        return None, "no oracle row"
    assert oracle is not None  # narrowed by `seeds`
    base = np.mean([real_only[s] for s in seeds])
    gap = np.mean([oracle[s] for s in seeds]) - base
    if gap <= 0:
        return None, "the oracle is no better than real only: no gap to close"
    return float((np.mean([values[s] for s in seeds]) - base) / gap), ""


def _wins(gain_ci: list[float] | None, control_cis: Mapping[str, list[float] | None]) -> tuple[bool | None, str]:
    """Whether a synthetic cell wins. The win rule: the lower bound of the 95% t-interval of its per-seed
    relative gain over real only is above 0, and for each control the lower bound of the 95% t-interval of
    its per-seed gain minus the control's gain (same seed) is above 0. The controls are the real->real
    control (real_continued) and, for every source but Markov itself, the Markov source in the same scenario.
    Undecided (None, with the reason) with one seed or with a control missing from the grid."""
    if gain_ci is None:
        return None, "one seed: no interval, so no win can be decided"
    missing = [name for name, ci in control_cis.items() if ci is None]
    if missing:
        return None, f"no {' or '.join(missing)} in the grid to compare with"
    return gain_ci[0] > 0 and all(ci[0] > 0 for ci in control_cis.values() if ci is not None), ""


def summarise(cells: list[CellResult], metric: str = "NDCG@10") -> list[dict[str, Any]]:
    """One row per (source, scenario, fraction), read seed by seed against real only of the same fraction:

    - mean, std: `metric` over seeds; gain_mean, gain_std: the relative gain (metric / real-only metric - 1,
      paired by seed), gains_by_seed, and gain_ci: its 95% t-interval over seeds (None with one seed);
    - gap_closed: (mean - real-only mean) / (oracle mean - real-only mean); None where undefined (note says why);
    - vs_control_ci, vs_markov_ci: 95% t-intervals of the per-seed gain minus the control's and the Markov
      source's; wins: the win rule of `_wins` (synthetic sources only; None elsewhere).
    """
    values: dict[tuple[str, str, float], dict[int, float]] = {}
    for cell in cells:
        values.setdefault((cell.source, cell.scenario, cell.fraction), {})[cell.seed] = cell.metrics[metric]
    gains = {key: _relative_gains(by_seed, values.get(("none", "real_only", key[2]), {}))
             for key, by_seed in values.items()}
    return [_row(key, values, gains, metric) for key in values]


def _row(key: tuple[str, str, float], values: Mapping[tuple[str, str, float], dict[int, float]],
         gains: Mapping[tuple[str, str, float], dict[int, float]], metric: str) -> dict[str, Any]:
    source, scenario, fraction = key
    metric_values, gain = np.array(list(values[key].values())), np.array(list(gains[key].values()))
    row: dict[str, Any] = {
        "source": source, "scenario": scenario, "fraction": fraction, "seeds": len(metric_values), "metric": metric,
        "mean": float(metric_values.mean()), "std": float(metric_values.std(ddof=1)) if len(metric_values) > 1 else 0.0,
        "gain_mean": float(gain.mean()) if len(gain) else float("nan"),
        "gain_std": float(gain.std(ddof=1)) if len(gain) > 1 else 0.0,
        "gains_by_seed": {str(seed): g for seed, g in gains[key].items()}, "gain_ci": t_interval(gain),
        "gap_closed": None, "vs_control_ci": None, "vs_markov_ci": None, "wins": None, "note": "",
    }
    if scenario == "real_only":  # real only is the reference, the oracle the end of the gap
        return row
    row["gap_closed"], gap_note = _gap_closed(values[key], values.get(("none", "real_only", fraction), {}),
                                              values.get((ORACLE, "real_only", fraction)))
    if (source, scenario) == CONTROL:
        row["note"] = gap_note
        return row
    controls = {"real->real control": (*CONTROL, fraction)}
    if source != "markov":
        controls["Markov source"] = ("markov", scenario, fraction)
    cis = {name: t_interval(_paired(gains[key], gains.get(other))) for name, other in controls.items()}
    row["vs_control_ci"], row["vs_markov_ci"] = cis["real->real control"], cis.get("Markov source")
    row["wins"], win_note = _wins(row["gain_ci"], cis)
    row["note"] = "; ".join(note for note in (gap_note, win_note) if note)
    return row


WIN_RULE = ("wins = the 95% interval of the per-seed gain over real only lies above 0, and so do the intervals of the "
            "per-seed gain minus the real->real control's and (for the LLM sources) minus the Markov source's in the same "
            "scenario")


def row_texts(row: Mapping[str, Any]) -> dict[str, str]:
    """A summary row's gain (mean and 95% interval), gap closed and win, as the tables print them."""
    if row["scenario"] == "real_only":
        return {"gain": "—", "gap": "—", "wins": "—"}
    ci = row["gain_ci"]
    interval = f"[{ci[0]:+.1%}, {ci[1]:+.1%}]" if ci is not None else "(one seed: no interval)"
    gap = f"{row['gap_closed']:.0%}" if row["gap_closed"] is not None else "—"
    wins = {True: "WINS", False: "no", None: "—"}[row["wins"]]
    return {"gain": f"{row['gain_mean']:+.1%} {interval}", "gap": gap, "wins": wins}


SOURCE_NAMES = {"llm": "the LLM data", "llm_ungrounded": "the ungrounded LLM data", "markov": "Markov data",
                "none": "the real->real control"}


def plain_summary(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per real-data fraction, in plain words: the best cell of each source (by mean gain), as the
    share of the gap to the oracle it closed where there is a gap, else as its relative gain; then which cells
    win. E.g. "At 10% real data (NDCG@10), the LLM data closed 34% of the gap (pretrain_augment), Markov data
    12% (finetune_augment), the real->real control 9%; no cell wins"."""
    sentences = []
    for fraction in sorted({row["fraction"] for row in summary}):
        rows = [r for r in summary if r["fraction"] == fraction and r["scenario"] != "real_only"]
        if not rows:
            continue
        metric = rows[0]["metric"]
        with_gap = all(r["gap_closed"] is not None for r in rows)
        parts = []
        for source, said in SOURCE_NAMES.items():
            mine = [r for r in rows if r["source"] == source]
            if not mine:
                continue
            best = max(mine, key=lambda r: r["gain_mean"])
            where = f" ({best['scenario']})" if source != "none" else ""
            parts.append(f"{said} {best['gap_closed']:.0%}{where}" if with_gap else f"{said} {best['gain_mean']:+.1%}{where}")
        winners = [f"{r['source']} {r['scenario']}" for r in rows if r["wins"]]
        undecided = all(r["wins"] is None for r in rows if (r["source"], r["scenario"]) != CONTROL)
        verdict = ("no win can be decided (one seed, or no control in the grid)" if undecided
                   else f"wins: {', '.join(winners)}" if winners else "no cell wins")
        how = "closed of the gap to the oracle" if with_gap else "gained over real only (no gap to close)"
        sentences.append(f"At {fraction:.0%} real data ({metric}, best cell per source), {how}: "
                         f"{'; '.join(parts)}; {verdict}.")
    return sentences
