"""The one-call synthetic evaluation: holdout choice, baseline column and JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.errors import DataError, EvaluationError
from behaviorlab.evaluate.baselines import markov_synthetic
from behaviorlab.evaluate.synthetic import (
    SyntheticEvaluation,
    SyntheticEvaluationConfig,
    evaluate_synthetic,
    train_and_holdout,
)


def random_sequences(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[str(a) for a in rng.choice(list("abcdef"), size=8)] for _ in range(n)]


def test_random_holdout_without_published_split(sequences_log) -> None:
    real = sequences_log(random_sequences(50, 1))
    train, holdout, how = train_and_holdout(real, SyntheticEvaluationConfig(holdout_fraction=0.2))
    assert holdout.n_users == 10 and train.n_users == 40
    assert set(train.users()).isdisjoint(holdout.users()) and "held out" in how


def test_evaluation_round_trips_through_json(sequences_log, tmp_path) -> None:
    real = sequences_log(random_sequences(60, 1))
    train, holdout, _ = train_and_holdout(real, SyntheticEvaluationConfig())
    synthetic = sequences_log(random_sequences(30, 2), prefix="s")
    result = evaluate_synthetic(train, holdout, synthetic, baseline=markov_synthetic(train, [8] * 30))
    assert {row.name for row in result.privacy} >= {"exact_copy_rate", "dcr_ratio", "membership_auc"}
    assert result.sizes["synthetic_sequences"] == 30 and result.profile_consistency is None
    path = tmp_path / "evaluation.json"
    result.save(path)
    again = SyntheticEvaluation.from_json(path.read_text())
    def triples(rows: list) -> list[tuple]:
        return [(r.name, r.value, r.reference) for r in rows]

    assert triples(again.fidelity) == triples(result.fidelity)
    assert again.privacy[0].baseline == result.privacy[0].baseline
    with pytest.raises(DataError):
        SyntheticEvaluation.from_json('{"fidelity": []}')


def test_synthetic_data_from_other_data_or_with_no_sequences_is_refused(sequences_log) -> None:
    real = sequences_log(random_sequences(40, 1))
    train, holdout, _ = train_and_holdout(real, SyntheticEvaluationConfig())
    other = sequences_log([["x", "y", "a"]] * 5, prefix="s")  # x, y never occur in the real data
    with pytest.raises(EvaluationError, match="2 of the synthetic data's actions never occur"):
        evaluate_synthetic(train, holdout, other)
    empty = other.with_frame(other.frame.head(0))
    with pytest.raises(EvaluationError, match="no sequences"):
        evaluate_synthetic(train, holdout, empty)


def test_evaluate_against_real_is_the_holdout_baseline_and_evaluation_by_hand(sequences_log) -> None:
    from behaviorlab.evaluate.baselines import MarkovBaselineConfig
    from behaviorlab.evaluate.fidelity import FidelityConfig
    from behaviorlab.evaluate.privacy import PrivacyConfig
    from behaviorlab.evaluate.synthetic import evaluate_against_real

    real = sequences_log(random_sequences(60, 1))
    synthetic = sequences_log(random_sequences(30, 2), prefix="s")
    config = SyntheticEvaluationConfig(seed=3, fidelity=FidelityConfig(seed=3), privacy=PrivacyConfig(seed=3))
    train, holdout, how = train_and_holdout(real, config)
    by_hand = evaluate_synthetic(train, holdout, synthetic, config=config,
                                 baseline=markov_synthetic(train, [8] * 30, MarkovBaselineConfig(seed=3)))
    result = evaluate_against_real(real, synthetic, seed=3)
    by_hand.notes.insert(0, f"real data: {how}")  # the one thing it adds: where the real holdout came from
    assert result.to_json() == by_hand.to_json()
    assert all(row.baseline is None for row in evaluate_against_real(real, synthetic, seed=3, baseline=False).fidelity)
    with pytest.raises(EvaluationError, match="never occur in the real data"):
        evaluate_against_real(real, sequences_log([["zz", "yy"]], prefix="x"))
