"""The experiment grid on a tiny Markov-chain fixture: real models, real training, resumable results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.scenarios import ExperimentConfig, run_experiment, subsample_users, summarise
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
    cells = run_experiment(split, noise, config, results_path=path, progress=lambda d, t, i=None: calls.append((d, t)))
    # per (fraction, seed): real only, real continued, and 2 sources x 4 synthetic scenarios
    assert len(cells) == 2 * 2 * (2 + 2 * 4) and calls[-1] == (40, 40)
    by = {(c.source, c.scenario, c.fraction, c.seed): c.metrics["HR@1"] for c in cells}
    assert by[("none", "real_only", 1.0, 0)] > by[("llm", "synthetic_only", 1.0, 0)] + 0.3
    assert by[("markov", "synthetic_only", 1.0, 0)] > by[("llm", "synthetic_only", 1.0, 0)] + 0.3
    assert len(list((tmp_path / ".scenarios-models").glob("*/*"))) == 4  # one real fit per (fraction, seed)
    saved = json.loads(path.read_text())
    assert len(saved["cells"]) == 40 and saved["summary"]
    # a re-run finds every cell saved and trains nothing
    again = []
    run_experiment(split, noise, config, results_path=path, progress=lambda d, t, i=None: again.append(d))
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
    cells = run_experiment(split, synth, config)
    assert [(c.source, c.scenario) for c in cells] == [("none", "real_only"), ("llm", "pretrain_augment")]
    assert all(0.0 <= c.metrics["NDCG@10"] <= 1.0 for c in cells)
    assert cells[1].synthetic_sequences == 40 and cells[1].real_sequences == 40


def test_adding_a_source_later_trains_only_the_new_cells(split, sequences_log, tmp_path) -> None:
    path = tmp_path / "scenarios.json"
    base = {"predictor": "markov", "predictor_settings": {"order": 1}, "fractions": (1.0,), "seeds": (0,),
                "scenarios": ("real_only", "pretrain_augment")}
    run_experiment(split, None, ExperimentConfig(**base, sources=("markov",), markov_sequences=40), results_path=path)
    llm = sequences_log(cycle_sequences(40, 6, seed=7), vocabulary=CYCLE, prefix="g")
    trained = []
    cells = run_experiment(split, llm, ExperimentConfig(**base, sources=("llm", "markov")), results_path=path,
                           progress=lambda d, t, i=None: trained.append(i["cell"]))
    # the Markov data has the same size (40 x 6 events) either way, so only the LLM cell is new
    assert trained == ["llm|pretrain_augment|1.0|0"]
    assert [c.source for c in cells] == ["none", "llm", "markov"]
    with pytest.raises(EvaluationError):  # another model: the saved cells do not apply
        run_experiment(split, llm, ExperimentConfig(**{**base, "predictor": "popularity", "predictor_settings": {}}),
                       results_path=path)
