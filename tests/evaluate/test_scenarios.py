"""The experiment grid on a tiny Markov-chain fixture: real models, real training, resumable results, and the
honest protocol: runs paired with their own real subset only, oracle rows, intervals and the win rule."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from behaviorlab.datasets import load
from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.scenarios import (
    CellResult,
    ExperimentConfig,
    SyntheticRun,
    cell_subsets,
    run_experiment,
    subsample_users,
    summarise,
    write_subsets,
)
from behaviorlab.sequences import last_event_examples

CYCLE = ["a", "b", "c", "d", "e"]


def cycle_sequences(n: int, length: int, seed: int, noise: float = 0.1) -> list[list[str]]:
    """Mostly a -> b -> c -> d -> e -> a, with some random steps."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        seq = [CYCLE[rng.integers(5)]]
        while len(seq) < length:
            nxt = CYCLE[(CYCLE.index(seq[-1]) + 1) % 5] if rng.random() > noise else CYCLE[rng.integers(5)]
            seq.append(nxt)
        out.append(seq)
    return out


def grounded_runs(split, config, log) -> list[SyntheticRun]:
    """`log` offered as one LLM run per distinct real subset of the grid, each recording that subset."""
    digests = dict.fromkeys(subset.digest() for subset in cell_subsets(split, config).values())
    return [SyntheticRun(f"run-{digest}", log, digest) for digest in digests]


@pytest.fixture
def split(sequences_log):
    from behaviorlab.sequences import SequenceSplit

    train = sequences_log(cycle_sequences(40, 6, seed=1), vocabulary=CYCLE, prefix="tr")
    valid = last_event_examples(sequences_log(cycle_sequences(30, 6, seed=2), vocabulary=CYCLE, prefix="va"))
    test = last_event_examples(sequences_log(cycle_sequences(30, 6, seed=3), vocabulary=CYCLE, prefix="te"))
    return SequenceSplit(train, valid, test)


def test_subsample_is_seeded_and_sized(sequences_log) -> None:
    log = sequences_log(cycle_sequences(20, 3, seed=0))
    assert subsample_users(log, 0.25, 1).n_users == 5
    assert subsample_users(log, 0.25, 1).users() == subsample_users(log, 0.25, 1).users()
    assert subsample_users(log, 1.0, 1) is log


def test_markov_grid_learns_and_resumes(split, sequences_log, tmp_path) -> None:
    # the "llm" log here is pure noise: training on it alone must be worse than on the real cycle
    noise = sequences_log(cycle_sequences(40, 6, seed=9, noise=1.0), vocabulary=CYCLE, prefix="g")
    config = ExperimentConfig(predictor="markov", predictor_settings={"order": 1}, fractions=(0.5, 1.0), seeds=(0, 1))
    path = tmp_path / "scenarios.json"
    calls = []
    runs = grounded_runs(split, config, noise)
    cells = run_experiment(split, runs, config, results_path=path, progress=lambda d, t, i=None: calls.append((d, t)))
    # per (fraction, seed): real only, oracle, real continued, and 2 sources x 4 synthetic scenarios
    assert len(cells) == 2 * 2 * (3 + 2 * 4) and calls[-1] == (44, 44)
    by = {(c.source, c.scenario, c.fraction, c.seed): c.metrics["HR@1"] for c in cells}
    assert by[("none", "real_only", 1.0, 0)] > by[("llm", "synthetic_only", 1.0, 0)] + 0.3
    assert by[("markov", "synthetic_only", 1.0, 0)] > by[("llm", "synthetic_only", 1.0, 0)] + 0.3
    # one real fit per (fraction, seed); the oracle (all the training data) shares the fit at fraction 1
    assert len(list((tmp_path / ".scenarios-models").glob("*/*"))) == 4
    saved = json.loads(path.read_text())
    assert len(saved["cells"]) == 44 and saved["summary"] and saved["version"] == 2
    # a re-run finds every cell saved and trains nothing
    again = []
    run_experiment(split, runs, config, results_path=path, progress=lambda d, t, i=None: again.append(d))
    assert again == []
    rows = {(r["source"], r["scenario"], r["fraction"]): r for r in summarise(cells, "HR@1")}
    assert rows[("none", "real_only", 1.0)]["gain_mean"] == pytest.approx(0.0)
    assert rows[("llm", "synthetic_only", 1.0)]["gain_mean"] < -0.3


def test_neural_pretraining_on_matching_synthetic_data_runs(split, sequences_log, tmp_path) -> None:
    torch.set_num_threads(1)
    synth = sequences_log(cycle_sequences(40, 6, seed=7), vocabulary=CYCLE, prefix="g")
    settings = {"embedding_dim": 8, "hidden_size": 8, "epochs": 3, "max_len": 5, "threads": 1, "device": "cpu"}
    config = ExperimentConfig(predictor="gru4rec", predictor_settings=settings, fractions=(1.0,), seeds=(0,),
                              scenarios=("real_only", "pretrain_augment"), sources=("llm",))
    cells = run_experiment(split, grounded_runs(split, config, synth), config)
    assert [(c.source, c.scenario) for c in cells] == [("none", "real_only"), ("oracle", "real_only"),
                                                       ("llm", "pretrain_augment")]
    assert all(0.0 <= c.metrics["NDCG@10"] <= 1.0 for c in cells)
    assert cells[2].synthetic_sequences == 40 and cells[2].real_sequences == 40


def test_the_grid_on_ray_gives_the_cells_of_the_local_engine(split, tmp_path, ray_cpus) -> None:
    """Real fits and real training (a tiny GRU4Rec, one thread) as Ray tasks; this process writes the results file."""
    settings = {"embedding_dim": 8, "hidden_size": 8, "epochs": 2, "max_len": 5, "threads": 1, "device": "cpu"}
    config = ExperimentConfig(predictor="gru4rec", predictor_settings=settings, fractions=(0.5, 1.0), seeds=(0, 1),
                              scenarios=("real_only", "finetune_augment", "pretrain_augment"), sources=("markov",),
                              markov_sequences=20)
    torch.set_num_threads(1)
    local = run_experiment(split, (), config, results_path=tmp_path / "local.json")
    on_ray = run_experiment(split, (), config, results_path=tmp_path / "ray.json", engine="ray")
    assert on_ray == local and len(local) == 2 * 2 * 4
    cells = [json.loads((tmp_path / f"{name}.json").read_text())["cells"] for name in ("local", "ray")]
    assert cells[0] == cells[1]
    # the ray engine resumes the local engine's file: nothing left to train
    calls = []
    run_experiment(split, (), config, results_path=tmp_path / "local.json", engine="ray",
                   progress=lambda done, total, info=None: calls.append(done))
    assert calls == []


def test_adding_a_source_later_trains_only_the_new_cells(split, sequences_log, tmp_path) -> None:
    path = tmp_path / "scenarios.json"
    base = {"predictor": "markov", "predictor_settings": {"order": 1}, "fractions": (1.0,), "seeds": (0,),
                "scenarios": ("real_only", "pretrain_augment")}
    run_experiment(split, (), ExperimentConfig(**base, sources=("markov",), markov_sequences=40), results_path=path)
    llm = sequences_log(cycle_sequences(40, 6, seed=7), vocabulary=CYCLE, prefix="g")
    runs = [SyntheticRun("run", llm, split.train.digest())]
    trained = []
    cells = run_experiment(split, runs, ExperimentConfig(**base, sources=("llm", "markov")), results_path=path,
                           progress=lambda d, t, i=None: trained.append(i["cell"]))
    # the Markov data has the same size (40 x 6 events) either way, so only the LLM cell is new
    assert trained == ["llm|pretrain_augment|1.0|0"]
    assert [c.source for c in cells] == ["none", "oracle", "llm", "markov"]
    with pytest.raises(EvaluationError):  # another model: the saved cells do not apply
        run_experiment(split, runs, ExperimentConfig(**{**base, "predictor": "popularity", "predictor_settings": {}}),
                       results_path=path)


MARKOV_GRID = {"predictor": "markov", "predictor_settings": {"order": 1}, "scenarios": ("real_only", "pretrain_augment")}


def test_an_llm_run_is_paired_only_with_the_subset_it_was_grounded_on(split, sequences_log) -> None:
    llm = sequences_log(cycle_sequences(40, 6, seed=7), vocabulary=CYCLE, prefix="g")
    config = ExperimentConfig(**MARKOV_GRID, fractions=(0.5, 1.0), seeds=(0,), sources=("llm",))
    full = SyntheticRun("full-run", llm, split.train.digest())
    # one run grounded on all the training data: the 50% cell's real-only model never saw half of it
    with pytest.raises(EvaluationError, match="fraction 0.5, seed 0") as refused:
        run_experiment(split, [full], config)
    assert "--write-subsets" in refused.value.hint
    half = SyntheticRun("half-run", llm, cell_subsets(split, config)[(0.5, 0)].digest())
    unknown = SyntheticRun("other-run", llm, "0123456789abcdef")
    bare = SyntheticRun("file.parquet", llm, None)
    with pytest.raises(EvaluationError) as every_problem:
        run_experiment(split, [full, half, unknown, bare], config)
    assert "other-run was grounded on real data that no cell" in str(every_problem.value)
    assert "file.parquet does not record" in str(every_problem.value)
    # each cell with the run of exactly its subset is accepted
    cells = run_experiment(split, [full, half], config)
    assert {(c.fraction, c.source) for c in cells if c.source == "llm"} == {(0.5, "llm"), (1.0, "llm")}
    real = {c.fraction: c.real_digest for c in cells if c.source == "none"}
    assert real == {0.5: half.grounding_digest, 1.0: full.grounding_digest}


def test_the_ungrounded_ablation_is_its_own_source_paired_and_read_against_markov(split, sequences_log) -> None:
    grounded = sequences_log(cycle_sequences(40, 6, seed=7), vocabulary=CYCLE, prefix="g")
    bare = sequences_log(cycle_sequences(40, 6, seed=8, noise=1.0), vocabulary=CYCLE, prefix="b")
    config = ExperimentConfig(**{**MARKOV_GRID, "scenarios": ("real_only", "real_continued", "synthetic_only")},
                              fractions=(1.0,),
                              seeds=(0, 1), sources=("llm", "llm_ungrounded", "markov"))
    digest = split.train.digest()
    # the two runs of one subset are two sources, not "two runs of one subset"
    runs = [SyntheticRun("grounded", grounded, digest), SyntheticRun("bare", bare, digest, "llm_ungrounded")]
    cells = run_experiment(split, runs, config)
    sources = [c.source for c in cells if c.seed == 0]
    assert sources == ["none", "oracle", "none", "llm", "llm_ungrounded", "markov"]
    by = {(c.source, c.seed): c.metrics["HR@1"] for c in cells}
    assert by[("llm_ungrounded", 0)] < by[("llm", 0)] - 0.3  # trained on noise vs on the cycle
    rows = {r["source"]: r for r in summarise(cells, "HR@1") if r["scenario"] == "synthetic_only"}
    assert rows["llm_ungrounded"]["vs_markov_ci"][1] < 0 and rows["llm_ungrounded"]["wins"] is False
    with pytest.raises(EvaluationError, match="'llm_ungrounded' source needs generation runs generated with"):
        run_experiment(split, runs[:1], config)


def test_written_subsets_load_back_as_the_cells_real_data(split, tmp_path) -> None:
    config = ExperimentConfig(**MARKOV_GRID, fractions=(0.5, 1.0), seeds=(0, 1))
    files = write_subsets(split, config, tmp_path / "subsets")
    # at 100% both seeds have the whole training log: one file serves them
    assert sorted(f.path.name for f in files) == ["real-0.5-seed0.parquet", "real-0.5-seed1.parquet", "real-1.parquet"]
    subsets = cell_subsets(split, config)
    for file in files:
        assert load(file.path).digest() == file.digest
        assert all(subsets[cell].digest() == file.digest for cell in file.cells)
    assert next(f for f in files if f.path.name == "real-1.parquet").cells == ((1.0, 0), (1.0, 1))


def test_every_fraction_has_an_oracle_row_and_the_gap_it_leaves(split, sequences_log) -> None:
    config = ExperimentConfig(**MARKOV_GRID, fractions=(0.25, 1.0), seeds=(0, 1), sources=("markov",))
    cells = run_experiment(split, (), config)
    oracle = {(c.fraction, c.seed): c for c in cells if c.source == "oracle"}
    real_only = {(c.fraction, c.seed): c for c in cells if c.source == "none" and c.scenario == "real_only"}
    assert set(oracle) == set(real_only) and all(c.real_sequences == 40 for c in oracle.values())
    assert oracle[(0.25, 0)].metrics == real_only[(1.0, 0)].metrics  # the oracle is real only on all the data
    rows = {(r["source"], r["fraction"]): r for r in summarise(cells, "NDCG@10")}
    assert rows[("markov", 1.0)]["gap_closed"] is None and "no gap to close" in rows[("markov", 1.0)]["note"]
    # a shift's oracle is other real data than the training log: it is trained on that
    extra = sequences_log(cycle_sequences(20, 6, seed=5), vocabulary=CYCLE, prefix="night")
    bigger = split.train.with_frame(pl.concat([split.train.frame, extra.frame]))
    shifted = run_experiment(split, (), config.model_copy(update={"fractions": (1.0,)}), oracle=bigger)
    assert {c.real_sequences for c in shifted if c.source == "oracle"} == {60}
    assert {c.real_digest for c in shifted if c.source == "oracle"} == {bigger.digest()}


def _cells(source: str, scenario: str, fraction: float, values: list[float]) -> list[CellResult]:
    return [CellResult(source, scenario, fraction, seed, {"NDCG@10": v}, 10, 10) for seed, v in enumerate(values)]


def test_intervals_gap_and_the_win_rule_on_known_numbers() -> None:
    real = [0.50] * 5
    cells = (_cells("none", "real_only", 0.1, real) + _cells("oracle", "real_only", 0.1, [0.60] * 5)
             + _cells("none", "real_continued", 0.1, [0.500, 0.502, 0.501, 0.500, 0.502])
             + _cells("markov", "pretrain_augment", 0.1, [0.510, 0.515, 0.505, 0.510, 0.510])
             + _cells("llm", "pretrain_augment", 0.1, [0.550, 0.560, 0.540, 0.555, 0.545])
             # beats real only and the control, but not the Markov source of its scenario beyond the interval
             + _cells("markov", "finetune_augment", 0.1, [0.510, 0.515, 0.505, 0.510, 0.510])
             + _cells("llm", "finetune_augment", 0.1, [0.512, 0.511, 0.507, 0.513, 0.509]))
    rows = {(r["source"], r["scenario"]): r for r in summarise(cells, "NDCG@10")}
    llm = rows[("llm", "pretrain_augment")]
    gains = np.array([0.10, 0.12, 0.08, 0.11, 0.09])
    half = 2.7764451 * gains.std(ddof=1) / np.sqrt(5)  # t(0.975, 4 degrees of freedom)
    assert llm["gain_ci"] == pytest.approx([0.10 - half, 0.10 + half])
    assert llm["gains_by_seed"]["1"] == pytest.approx(0.12)
    assert llm["gap_closed"] == pytest.approx(0.5)  # (0.55 - 0.50) / (0.60 - 0.50)
    assert llm["wins"] is True and llm["vs_markov_ci"][0] > 0 and llm["vs_control_ci"][0] > 0
    weak = rows[("llm", "finetune_augment")]
    assert weak["gain_ci"][0] > 0 and weak["vs_control_ci"][0] > 0 and weak["vs_markov_ci"][0] < 0
    assert weak["wins"] is False
    # Markov is read against the control only; the control itself and the references decide nothing
    assert rows[("markov", "pretrain_augment")]["vs_markov_ci"] is None
    assert rows[("markov", "pretrain_augment")]["wins"] is True
    assert rows[("none", "real_continued")]["wins"] is None and rows[("oracle", "real_only")]["wins"] is None
    # without the control in the grid no cell can be said to win
    uncontrolled = [c for c in cells if c.scenario != "real_continued"]
    row = next(r for r in summarise(uncontrolled) if (r["source"], r["scenario"]) == ("llm", "pretrain_augment"))
    assert row["wins"] is None and "no real->real control in the grid" in row["note"]


def test_one_seed_has_no_interval_and_decides_no_win() -> None:
    cells = (_cells("none", "real_only", 1.0, [0.5]) + _cells("oracle", "real_only", 1.0, [0.5])
             + _cells("none", "real_continued", 1.0, [0.51]) + _cells("llm", "pretrain_augment", 1.0, [0.6])
             + _cells("markov", "pretrain_augment", 1.0, [0.52]))
    row = next(r for r in summarise(cells) if r["source"] == "llm")
    assert row["gain_ci"] is None and row["wins"] is None and "one seed" in row["note"]
    assert row["gap_closed"] is None and "no gap to close" in row["note"]  # the oracle is real only here


def test_a_results_file_of_the_old_format_is_refused(split, tmp_path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"digest": "abc", "config": {}, "cells": [], "summary": []}))  # version 1: no field
    with pytest.raises(EvaluationError, match="format version 1") as refused:
        run_experiment(split, (), ExperimentConfig(**MARKOV_GRID, fractions=(1.0,), seeds=(0,), sources=("markov",)),
                       results_path=path)
    assert "delete the file" in refused.value.hint
