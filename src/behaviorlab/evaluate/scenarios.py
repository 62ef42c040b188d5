"""The experiment grid: training scenarios x synthetic sources x real-data fractions x seeds.

For each (fraction, seed) a random subset of the real training users is drawn (the same subset for
every source and scenario). Sources: "llm" (a given synthetic log, fixed) and "markov" (sampled with
`baselines.markov_synthetic` from a chain fitted to that same real subset, with the LLM log's sequence
lengths, or the subset's own lengths when no LLM log is given). Every trained model is scored once on
the real test examples. Finished cells are saved after each one, so an interrupted experiment
resumes where it stopped; the model fitted on each real subset (the start of the real-only and
fine-tuning scenarios) is fitted once and kept beside the results. The summary reports each cell's
metric as mean +/- std over seeds and the relative gain over `real_only` at the same fraction and seed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.atomic import write_text_atomic
from behaviorlab.config import StrictConfig
from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.baselines import MarkovBaselineConfig, markov_synthetic
from behaviorlab.evaluate.utility import (
    REAL_ONLY_SCENARIOS,
    SCENARIOS,
    STARTS_FROM_REAL,
    ModelFactory,
    Scenario,
    align_synthetic,
    check_scenarios,
    train_scenario,
)
from behaviorlab.models.base import NextBehaviorModel
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import USER, EventLog
from behaviorlab.sequences import NextEventExamples, SequenceSplit

Source = Literal["llm", "markov"]


class ExperimentConfig(StrictConfig):
    title: str = "Training scenarios"  # names the experiment in tables and reports
    predictor: str = "gru4rec"  # a name from models.registry
    predictor_settings: dict[str, Any] = Field(default_factory=dict)  # config overrides (seed is set per run)
    fractions: tuple[float, ...] = (0.1, 0.25, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    scenarios: tuple[Scenario, ...] = SCENARIOS
    sources: tuple[Source, ...] = ("llm", "markov")
    ks: tuple[int, ...] = (1, 5, 10)
    metric: str = "NDCG@10"  # the summary's headline metric
    markov: MarkovBaselineConfig = Field(default_factory=MarkovBaselineConfig)
    # Markov sequences per cell when no LLM log sets the count (None: as many as the real subset has).
    markov_sequences: int | None = Field(None, ge=1)


@dataclass(frozen=True)
class CellResult:
    source: str  # "none" for real_only
    scenario: str
    fraction: float
    seed: int
    metrics: dict[str, float]
    real_sequences: int
    synthetic_sequences: int
    data_digest: str = ""  # identifies the synthetic data the cell trained on ("" for real only)

    @property
    def key(self) -> str:
        return cell_key(self.source, self.scenario, self.fraction, self.seed)


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


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _experiment_digest(config: ExperimentConfig, split: SequenceSplit) -> str:
    """What every cell depends on besides its own synthetic data: the model, its settings and the real
    split. The grid (fractions, seeds, scenarios, sources) may grow between runs; finished cells stay."""
    settings = config.model_dump(mode="json", include={"predictor", "predictor_settings", "ks", "markov"})
    return _digest(json.dumps(settings, sort_keys=True), split.train.frame.hash_rows().sum(),
                   "|".join(split.valid.targets), "|".join(split.test.targets))


def _log_digest(log: EventLog) -> str:
    return _digest(log.frame.hash_rows().sum(), log.n_events)


def _load_cells(path: Path | None, digest: str) -> dict[str, CellResult]:
    if path is None or not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("digest") != digest:
            raise EvaluationError(f"{path} holds results of a different experiment (model, settings or real data)",
                                  hint="Choose another output path, or delete the file to start over.")
        return {c.key: c for c in (CellResult(**cell) for cell in payload["cells"])}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise EvaluationError(f"{path} is not an experiment result file: {exc}",
                              hint="Choose another output path, or delete the file to start over.") from exc


def _save_cells(path: Path | None, digest: str, config: ExperimentConfig, cells: Mapping[str, CellResult]) -> None:
    if path is None:
        return
    payload = {"digest": digest, "config": config.model_dump(mode="json"),
               "cells": [vars(c) for c in cells.values()], "summary": summarise(list(cells.values()), config.metric)}
    write_text_atomic(path, json.dumps(payload, indent=1))


def run_experiment(split: SequenceSplit, synthetic: EventLog | None, config: ExperimentConfig | None = None, *,
                   results_path: str | Path | None = None, progress: ProgressReporter | None = None) -> list[CellResult]:
    """Run every cell of the grid (skipping cells already saved in `results_path`) and return all cells."""
    from behaviorlab.evaluate.metrics import ranking_report
    from behaviorlab.models.registry import create_model

    config = config or ExperimentConfig()
    check_scenarios(config.scenarios)
    if "llm" in config.sources and synthetic is None:
        raise EvaluationError("The 'llm' source needs a synthetic log", hint="Pass a generation run, or use sources=['markov'].")
    llm = align_synthetic(synthetic, split.train) if synthetic is not None else None
    path = Path(results_path) if results_path is not None else None
    digest = _experiment_digest(config, split)
    cells = _load_cells(path, digest)
    models_dir = path.parent / f".{path.stem}-models" / digest if path is not None else None
    trainings = [("none", "real_only")] + [("none", s) for s in config.scenarios if s == "real_continued"]
    trainings += [(source, scenario) for source in config.sources for scenario in config.scenarios
                  if scenario not in REAL_ONLY_SCENARIOS]
    total = len(config.fractions) * len(config.seeds) * len(trainings)
    done = 0
    for fraction in config.fractions:
        for seed in config.seeds:
            real = subsample_users(split.train, fraction, seed)
            sources = _synthetic_sources(config, seed, real, llm, split.train)
            data_digests = {name: _log_digest(log) for name, log in sources.items()}
            make_model = partial(create_model, config.predictor, **{**config.predictor_settings, "seed": seed})
            real_models = _RealModels(make_model, real, split.valid, models_dir, fraction, seed)
            for source, scenario in trainings:
                key = cell_key(source, scenario, fraction, seed)
                done += 1
                if key in cells and cells[key].data_digest == data_digests.get(source, ""):
                    continue
                starts = real_models.copy() if scenario in STARTS_FROM_REAL else None
                model = train_scenario(scenario, make_model, real, sources.get(source), split.valid,
                                       fitted_on_real=starts)
                metrics = ranking_report(model, split.test, config.ks)
                cells[key] = CellResult(source, scenario, fraction, seed, metrics, real.n_users,
                                        sources[source].n_users if source in sources else 0,
                                        data_digests.get(source, ""))
                _save_cells(path, digest, config, cells)
                if progress is not None:
                    progress(done, total, {"cell": key, config.metric: metrics.get(config.metric, float("nan"))})
    return [cells[cell_key(source, scenario, fraction, seed)] for fraction in config.fractions
            for seed in config.seeds for source, scenario in trainings]


class _RealModels:
    """The model fitted on one (fraction, seed) real subset, fitted once and handed out as fresh copies.
    With a results file it is saved beside it, so a resumed experiment does not fit it again."""

    def __init__(self, make_model: ModelFactory, real: EventLog, valid: NextEventExamples, models_dir: Path | None,
                 fraction: float, seed: int) -> None:
        self._make_model, self._real, self._valid = make_model, real, valid
        self._directory = models_dir / f"{fraction}-{seed}" if models_dir is not None else None
        self._fitted: NextBehaviorModel | None = None

    def copy(self) -> NextBehaviorModel:
        from behaviorlab.models.registry import load_model

        if self._directory is not None and self._directory.is_dir():
            return load_model(self._directory)
        if self._fitted is None:
            self._fitted = self._make_model().fit(self._real, self._valid)
            if self._directory is not None:
                self._fitted.save(self._directory)
                return load_model(self._directory)
        return copy.deepcopy(self._fitted)


def _synthetic_sources(config: ExperimentConfig, seed: int, real: EventLog, llm: EventLog | None,
                       full_train: EventLog) -> dict[str, EventLog]:
    """The synthetic logs of one (fraction, seed) cell, aligned to the real training log."""
    sources: dict[str, EventLog] = {}
    if "llm" in config.sources and llm is not None:
        sources["llm"] = llm
    if "markov" in config.sources:
        lengths = (llm if llm is not None else real).frame.group_by(USER).len().sort(USER).get_column("len").to_list()
        if llm is None and config.markov_sequences is not None:  # the real subset's lengths, cycled
            lengths = [lengths[i % len(lengths)] for i in range(config.markov_sequences)]
        markov_config = config.markov.model_copy(update={"seed": config.markov.seed + seed})
        sources["markov"] = align_synthetic(markov_synthetic(real, lengths, markov_config), full_train)
    return sources


def summarise(cells: list[CellResult], metric: str = "NDCG@10") -> list[dict[str, Any]]:
    """One row per (source, scenario, fraction): mean/std of `metric` over seeds, and of the relative gain
    (metric / real_only metric - 1, paired by fraction and seed)."""
    reference = {(c.fraction, c.seed): c.metrics[metric] for c in cells if c.scenario == "real_only"}
    groups: dict[tuple[str, str, float], list[CellResult]] = {}
    for cell in cells:
        groups.setdefault((cell.source, cell.scenario, cell.fraction), []).append(cell)
    rows = []
    for (source, scenario, fraction), members in groups.items():
        values = np.array([c.metrics[metric] for c in members])
        gains = np.array([c.metrics[metric] / reference[(c.fraction, c.seed)] - 1 for c in members
                          if reference.get((c.fraction, c.seed))])
        rows.append({
            "source": source, "scenario": scenario, "fraction": fraction, "seeds": len(members), "metric": metric,
            "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "gain_mean": float(gains.mean()) if len(gains) else float("nan"),
            "gain_std": float(gains.std(ddof=1)) if len(gains) > 1 else 0.0,
        })
    return rows
