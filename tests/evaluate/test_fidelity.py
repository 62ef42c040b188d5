"""Fidelity metrics on hand-computed cases (JSD in bits: 0 for identical, 1 for disjoint supports)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.fidelity import (
    FidelityConfig,
    counts_jsd,
    discriminative_auc,
    fidelity_table,
    fidelity_values,
    jensen_shannon,
    matched_samples,
    ngram_overlap,
    transition_distance,
)


def chain_sequences(transitions: dict[str, list[str]], n: int, length: int, seed: int) -> list[list[str]]:
    """Sequences from a Markov chain that picks the next action uniformly from `transitions[current]`."""
    rng = np.random.default_rng(seed)
    states = sorted(transitions)
    out = []
    for _ in range(n):
        seq = [states[rng.integers(len(states))]]
        while len(seq) < length:
            options = transitions[seq[-1]]
            seq.append(options[rng.integers(len(options))])
        out.append(seq)
    return out


CHAIN_A = {"a": ["b", "c"], "b": ["c", "d"], "c": ["d", "a"], "d": ["a", "b"]}
CHAIN_B = {"a": ["a", "d"], "b": ["b", "a"], "c": ["c", "b"], "d": ["d", "c"]}


def test_jensen_shannon_hand_computed() -> None:
    assert jensen_shannon(np.array([1, 2, 3]), np.array([2, 4, 6])) == pytest.approx(0.0)
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    # p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4); KL(p||m) = log2(4/3); KL(q||m) = (log2(2/3) + 1) / 2
    expected = (math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2
    assert jensen_shannon(np.array([1, 0]), np.array([1, 1])) == pytest.approx(expected)
    assert counts_jsd(["x", "x", "y"], ["z"]) == pytest.approx(1.0)


def test_empty_distribution_is_an_error() -> None:
    with pytest.raises(EvaluationError):
        jensen_shannon(np.zeros(2), np.ones(2))


def test_transition_distance_and_ngrams_hand_computed() -> None:
    real = [["a", "b"], ["a", "b"]]
    synth = [["a", "b"], ["a", "c"]]
    assert transition_distance(real, real) == pytest.approx(0.0)
    assert transition_distance(real, synth) == pytest.approx(0.5)  # row a: (1, 0) vs (1/2, 1/2)
    assert transition_distance(real, [["x", "y"]]) == pytest.approx(1.0)
    assert ngram_overlap(real, synth, 2) == pytest.approx((0.5, 1.0))
    assert ngram_overlap(real, [["x", "y"]], 2) == pytest.approx((0.0, 0.0))


def test_identical_logs_have_zero_divergence(sequences_log) -> None:
    seqs = chain_sequences(CHAIN_A, 60, 8, seed=1)
    bins = [["(0~3)", "(3~6)"] * 4 for _ in seqs]
    log = sequences_log(seqs, hour_bins=bins)
    values = fidelity_values(log, sequences_log(seqs, hour_bins=bins, prefix="s"), FidelityConfig())
    for name in ("action_jsd", "length_jsd", "hour_bin_jsd", "transition_distance"):
        assert values[name] == pytest.approx(0.0, abs=1e-12), name
    assert values["ngram2_precision"] == values["ngram3_recall"] == 1.0
    assert "weekday_jsd" not in values and "gap_jsd" not in values  # the fixture has neither


def test_disjoint_logs_have_maximum_divergence(sequences_log) -> None:
    real = sequences_log([["a", "b", "a"]] * 20)
    synth = sequences_log([["x", "y", "y", "x"]] * 20)
    values = fidelity_values(real, synth, FidelityConfig())
    assert values["action_jsd"] == pytest.approx(1.0)
    assert values["length_jsd"] == pytest.approx(1.0)
    assert values["transition_distance"] == pytest.approx(1.0)
    assert values["ngram2_precision"] == 0.0
    assert values["discriminator_auc"] == pytest.approx(1.0)


def test_discriminator_separates_different_chains_but_not_the_same_chain(sequences_log) -> None:
    real = sequences_log(chain_sequences(CHAIN_A, 150, 10, seed=1))
    same = sequences_log(chain_sequences(CHAIN_A, 150, 10, seed=2), prefix="s")
    other = sequences_log(chain_sequences(CHAIN_B, 150, 10, seed=3), prefix="s")
    config = FidelityConfig()
    assert abs(discriminative_auc(real, same, config) - 0.5) < 0.15
    assert discriminative_auc(real, other, config) > 0.95


def test_table_has_real_vs_real_reference(sequences_log) -> None:
    real = sequences_log(chain_sequences(CHAIN_A, 80, 10, seed=1))
    synth = sequences_log(chain_sequences(CHAIN_B, 80, 10, seed=2), prefix="s")
    rows = {row.name: row for row in fidelity_table(real, synth)}
    assert rows["action_jsd"].reference is not None
    assert rows["transition_distance"].value > rows["transition_distance"].reference
    assert rows["discriminator_auc"].ideal == "0.5"



def test_matched_samples_have_equal_sizes_and_disjoint_real_parts(sequences_log) -> None:
    real = sequences_log(chain_sequences(CHAIN_A, 80, 10, seed=1))
    few = sequences_log(chain_sequences(CHAIN_A, 30, 10, seed=2), prefix="s")
    samples = matched_samples(real, few, seed=0)
    assert samples.real.n_users == samples.synthetic.n_users == 30 and samples.target.n_users == 50
    assert set(samples.target.users()).isdisjoint(samples.real.users())
    many = sequences_log(chain_sequences(CHAIN_A, 300, 10, seed=3), prefix="s")
    samples = matched_samples(real, many, seed=0)
    assert samples.real.n_users == samples.synthetic.n_users == samples.target.n_users == 40
