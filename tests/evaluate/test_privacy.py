"""Privacy metrics: a verbatim copy gives copy rate 1 and DCR 0; unrelated data gives neither."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.evaluate.privacy import (
    PrivacyConfig,
    copy_rate,
    nearest_distances,
    privacy_table,
    privacy_values,
    sequence_vectors,
    window_copy_rate,
)


def random_sequences(n: int, length: int, alphabet: str, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[alphabet[i] for i in rng.integers(len(alphabet), size=length)] for _ in range(n)]


def test_copy_rates_hand_computed() -> None:
    train = [["a", "b", "c"], ["b", "c", "d"]]
    assert copy_rate(train, train) == 1.0
    assert copy_rate([["a", "b", "c"], ["d", "d", "d"]], train) == 0.5
    # windows of 2 in the candidate: (a,b) yes, (b,d) no
    assert window_copy_rate([["a", "b", "d"]], train, 2) == pytest.approx(0.5)


def test_distances_zero_for_copies_and_order_sensitive() -> None:
    records, queries = sequence_vectors([[["a", "b", "c"]], [["a", "b", "c"], ["c", "b", "a"], ["x", "y", "z"]]])
    d = nearest_distances(queries, records)
    assert d[0] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < d[1] < 1.0  # same actions, different order: bigrams differ
    assert d[2] == pytest.approx(1.0)


def test_verbatim_copy_is_flagged(sequences_log) -> None:
    train_seqs = random_sequences(200, 8, "abcdefgh", seed=1)
    train = sequences_log(train_seqs)
    holdout = sequences_log(random_sequences(200, 8, "abcdefgh", seed=2), prefix="h")
    copy = sequences_log(train_seqs, prefix="s")
    v = privacy_values(train, holdout, copy, PrivacyConfig())
    assert v["exact_copy_rate"] == 1.0 and v["window5_copy_rate"] == 1.0
    assert v["dcr_synthetic_median"] == pytest.approx(0.0, abs=1e-9)
    assert v["dcr_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert v["membership_auc"] > 0.95  # members sit at distance 0 from the copies


def test_fresh_samples_of_the_same_distribution_are_safe(sequences_log) -> None:
    train = sequences_log(random_sequences(300, 8, "abcdefgh", seed=1))
    holdout = sequences_log(random_sequences(300, 8, "abcdefgh", seed=2), prefix="h")
    synth = sequences_log(random_sequences(300, 8, "abcdefgh", seed=3), prefix="s")
    rows = {row.name: row for row in privacy_table(train, holdout, synth)}
    assert rows["exact_copy_rate"].value == 0.0
    assert rows["dcr_ratio"].value == pytest.approx(1.0, abs=0.1)
    assert rows["membership_auc"].value == pytest.approx(0.5, abs=0.1)


def test_copies_shorter_than_the_window_are_still_seen(sequences_log) -> None:
    """4-event synthetic sequences cut from 8-event training sequences: no whole-sequence copy, no 5-event
    window, but every 4-event window is verbatim; the check shortens its window to see that."""
    train_seqs = random_sequences(100, 8, "abcdefgh", seed=1)
    train = sequences_log(train_seqs)
    holdout = sequences_log(random_sequences(100, 8, "abcdefgh", seed=2), prefix="h")
    cut = sequences_log([s[2:6] for s in train_seqs[:50]], prefix="s")
    rows = {row.name: row for row in privacy_table(train, holdout, cut)}
    assert rows["exact_copy_rate"].value == 0.0
    assert rows["window4_copy_rate"].value == 1.0 and "shortened from 5" in rows["window4_copy_rate"].description
