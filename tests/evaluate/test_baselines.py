"""The Markov-chain synthetic baseline reproduces a chain's transitions and the log's shape."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.baselines import MarkovBaselineConfig, markov_synthetic
from behaviorlab.evaluate.fidelity import transition_distance


def test_samples_follow_the_real_chain_and_keep_schema(sequences_log) -> None:
    # deterministic cycle a -> b -> c -> a with hour bins tied to the action
    seqs = [["a", "b", "c", "a", "b", "c"][i % 3:][:4] for i in range(30)]
    bins = [["(0~3)" if a == "a" else "(3~6)" for a in s] for s in seqs]
    real = sequences_log(seqs, vocabulary=["a", "b", "c", "d"], hour_bins=bins)
    synth = markov_synthetic(real, [5] * 40, MarkovBaselineConfig(seed=3))
    assert synth.schema == real.schema and synth.vocabulary == real.vocabulary
    assert synth.n_users == 40 and synth.n_events == 200
    out = list(synth.action_sequences().values())
    assert transition_distance(seqs, out) < 0.05  # nearly all transitions follow the cycle
    assert Counter(s[0] for s in out).keys() <= {"a", "b", "c", "d"}
    bins_for_a = synth.frame.filter(pl.col("action") == "a").get_column("hour_bin").unique().to_list()
    assert bins_for_a == ["(0~3)"]


def test_seeded_and_reproducible(sequences_log) -> None:
    real = sequences_log([["a", "b", "a", "c"], ["b", "c", "b", "a"]])
    first = markov_synthetic(real, [4, 6], MarkovBaselineConfig(seed=1))
    again = markov_synthetic(real, [4, 6], MarkovBaselineConfig(seed=1))
    assert first.frame.equals(again.frame)
    assert sorted(len(s) for s in first.action_sequences().values()) == [4, 6]


def test_bad_lengths_rejected(sequences_log) -> None:
    with pytest.raises(EvaluationError):
        markov_synthetic(sequences_log([["a", "b"]]), [])
