"""Metric functions against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.metrics import (
    accuracy,
    auc,
    hit_rate_at_k,
    macro_recall,
    mae,
    mean_and_std,
    mrr,
    mrr_at_k,
    ndcg_at_k,
    ranking_metrics,
    rmse,
    sampled_candidates,
    target_ranks,
)

# Three examples over 4 actions. Targets: 0 (rank 0), 2 (rank 2), 3 (rank 3).
SCORES = np.array([
    [0.9, 0.1, 0.0, 0.0],
    [0.5, 0.4, 0.3, 0.1],
    [0.4, 0.3, 0.2, 0.1],
])
TARGETS = [0, 2, 3]


def test_ranks_hit_rate_ndcg_mrr_by_hand():
    assert target_ranks(SCORES, TARGETS).tolist() == [0, 2, 3]
    assert hit_rate_at_k(SCORES, TARGETS, 1) == pytest.approx(1 / 3)
    assert hit_rate_at_k(SCORES, TARGETS, 3) == pytest.approx(2 / 3)
    assert ndcg_at_k(SCORES, TARGETS, 3) == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert ndcg_at_k(SCORES, TARGETS, 10) == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(5)) / 3)
    assert mrr(SCORES, TARGETS) == pytest.approx((1 + 1 / 3 + 1 / 4) / 3)
    assert mrr_at_k(SCORES, TARGETS, 3) == pytest.approx((1 + 1 / 3) / 3)


def test_ties_count_against_the_model():
    constant = np.zeros((2, 5))
    assert target_ranks(constant, [0, 4]).tolist() == [4, 4]
    assert hit_rate_at_k(constant, [0, 4], 4) == 0.0


def test_accuracy_and_macro_recall_by_hand():
    scores = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)
    targets = [0, 0, 1, 1, 2]
    # correct: yes, yes, yes, no, no -> accuracy 3/5; recall per class: 0 -> 1, 1 -> 1/2, 2 -> 0
    assert accuracy(scores, targets) == pytest.approx(0.6)
    assert macro_recall(scores, targets) == pytest.approx(0.5)


def test_auc_by_hand_with_ties():
    # positives 0.8, 0.4; negatives 0.6, 0.4, 0.1: pairs won 1+1+1, 0+0.5+1 -> 4.5 of 6
    assert auc([1, 1, 0, 0, 0], [0.8, 0.4, 0.6, 0.4, 0.1]) == pytest.approx(0.75)
    assert auc([0, 1], [0.1, 0.9]) == 1.0
    with pytest.raises(EvaluationError):
        auc([1, 1], [0.1, 0.2])


def test_mae_rmse_by_hand():
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    with pytest.raises(EvaluationError):
        mae([1, 2], [1])


def test_report_is_full_ranking_by_default_and_labels_sampling():
    full = ranking_metrics(SCORES, TARGETS, ks=(1, 3))
    assert full["HR@3"] == pytest.approx(2 / 3) and full["examples"] == 3
    assert "accuracy" in full and not any("sampled" in key for key in full)
    sampled = ranking_metrics(SCORES, TARGETS, ks=(1,), negatives=2, seed=1)
    assert set(sampled) == {"HR@1 (sampled 2)", "NDCG@1 (sampled 2)", "MRR@1 (sampled 2)", "MRR (sampled 2)", "examples"}


def test_sampled_candidates_never_include_the_target_twice():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 20))
    targets = rng.integers(0, 20, size=50)
    picked, new_targets = sampled_candidates(scores, targets, negatives=19, seed=3)
    assert (new_targets == 0).all()
    # with all 19 negatives, each row is a permutation of the full row with the target first
    np.testing.assert_allclose(np.sort(picked, axis=1), np.sort(scores, axis=1))
    np.testing.assert_allclose(picked[:, 0], scores[np.arange(50), targets])


def test_bad_inputs_are_errors():
    with pytest.raises(EvaluationError):
        hit_rate_at_k(SCORES, [0, 1], 1)
    with pytest.raises(EvaluationError):
        hit_rate_at_k(SCORES, [0, 1, 4], 1)
    with pytest.raises(EvaluationError):
        hit_rate_at_k(SCORES, TARGETS, 0)


def test_mean_and_std_over_seeds():
    summary = mean_and_std([{"HR@1": 0.2, "x": 1.0}, {"HR@1": 0.4}])
    assert summary == {"HR@1": (pytest.approx(0.3), pytest.approx(math.sqrt(0.02)))}


def test_a_model_report_in_blocks_equals_the_report_of_the_whole_score_matrix():
    import polars as pl

    from behaviorlab.metrics import example_ranks, ranking_report, target_columns
    from behaviorlab.models.markov import MarkovModel
    from behaviorlab.schema import EventLog, Schema
    from behaviorlab.sequences import leave_one_out

    rng = np.random.default_rng(3)
    rows = [(f"u{u}", t, f"a{int(rng.integers(0, 40))}") for u in range(60) for t in range(8)]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "position": pl.Int64, "action": pl.String}, orient="row")
    split = leave_one_out(EventLog(frame, Schema(time="position")))
    model = MarkovModel().fit(split.train)
    whole = ranking_metrics(model.predict_scores(split.test), target_columns(model, split.test), (1, 5, 10))
    sampled = ranking_metrics(model.predict_scores(split.test), target_columns(model, split.test), (10,), negatives=5, seed=4)
    for cells in (40, 7 * 40, 10**9):  # one example per block, 7 per block (a ragged last block), all at once
        assert ranking_report(model, split.test, (1, 5, 10), cells=cells) == whole
        assert ranking_report(model, split.test, (10,), negatives=5, seed=4, cells=cells) == sampled
    assert len(example_ranks(model, split.test, cells=40).full) == len(split.test)
