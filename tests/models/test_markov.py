"""The order-k Markov model: learns known transitions, backs off, proper probabilities, persistence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from behaviorlab.errors import ModelError
from behaviorlab.models.markov import MarkovConfig, MarkovModel
from behaviorlab.models.registry import load_model
from behaviorlab.schema import EventLog, Schema, Vocabulary
from behaviorlab.sequences import leave_one_out

from .conftest import chain_matrix


def _log(sequences: list[list[str]], actions: tuple[str, ...] | None = None) -> EventLog:
    rows = [(f"u{i}", t, a) for i, seq in enumerate(sequences) for t, a in enumerate(seq)]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "position": pl.Int64, "action": pl.String}, orient="row")
    vocabulary = Vocabulary.from_actions(actions) if actions else None
    return EventLog(frame, Schema(time="position"), vocabulary)


def test_recovers_the_true_transition_matrix(chain_log):
    log = chain_log(n_users=300, length=40)
    model = MarkovModel(MarkovConfig(order=1)).fit(log)
    truth = chain_matrix()
    for a in range(truth.shape[0]):
        learned = model.transition_probabilities([f"a{a:02d}"])
        assert learned.sum() == pytest.approx(1.0)
        assert np.abs(learned - truth[a]).max() < 0.05


def test_hand_computed_backoff_probabilities():
    # Transitions seen: x->y twice, x->z once (order 1); contexts of order 2: (x,y)->x once.
    log = _log([["x", "y", "x", "y"], ["x", "z"]], actions=("x", "y", "z"))
    model = MarkovModel(MarkovConfig(order=2, discount=0.5, unigram_alpha=1.0)).fit(log)
    # unigram counts x3 y2 z1 -> (c+1)/(6+3)
    unigram = np.array([4, 3, 2]) / 9
    np.testing.assert_allclose(model.transition_probabilities([]), unigram)
    # order 1 after x: N(x)=3, y:2, z:1, T=2 -> max(c-0.5,0)/3 + 0.5*2/3 * unigram
    after_x = np.array([0.0, 1.5, 0.5]) / 3 + (1 / 3) * unigram
    # history (z, x): context (z, x) never seen -> backs off to order 1 entirely
    np.testing.assert_allclose(model.transition_probabilities(["z", "x"]), after_x)
    # history (y, x): (y, x)->y once, N=1, T=1 -> 0.5 on y + 0.5 * after_x
    np.testing.assert_allclose(model.transition_probabilities(["y", "x"]), np.array([0, 0.5, 0]) + 0.5 * after_x)
    # log-likelihood = sum of the per-event log-probabilities given each prefix
    expected = np.log(unigram[0]) + np.log(after_x[1])
    assert model.log_likelihood(["x", "y"]) == pytest.approx(expected)


def test_scores_are_log_probabilities_and_topk_is_sorted(chain_log):
    split = leave_one_out(chain_log())
    model = MarkovModel().fit(split.train, split.valid)
    scores = model.predict_scores(split.test)
    assert scores.dtype == np.float32 and scores.shape == (len(split.test), 12)
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-4)
    ranked = model.predict_next(["a00", "a01"], k=3)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True)
    assert ranked[0][0] == "a02"  # the dominant successor of a01
    assert model.score(["a00", "a01"], "a02") == pytest.approx(np.log(ranked[0][1]), rel=1e-5)


def test_warm_start_adds_counts_and_needs_the_same_vocabulary():
    actions = ("x", "y", "z")
    model = MarkovModel(MarkovConfig(order=1)).fit(_log([["x", "y"]] * 5, actions))
    before = model.transition_probabilities(["x"])[2]
    model.fit(_log([["x", "z"]] * 20, actions), warm_start=True)
    assert model.transition_probabilities(["x"])[2] > 0.5 > before
    with pytest.raises(ModelError, match="same action vocabulary"):
        model.fit(_log([["x", "y"]]), warm_start=True)


def test_unknown_actions_and_unfitted_model_are_errors():
    with pytest.raises(ModelError, match="not fitted"):
        MarkovModel().predict_next(["x"])
    model = MarkovModel().fit(_log([["x", "y", "x"]]))
    with pytest.raises(ModelError, match="not in the model's vocabulary"):
        model.predict_next(["x", "nope"])


def test_explanation_credits_the_context_events_with_counts():
    log = _log([["x", "y", "z"]] * 4 + [["y", "x"]])
    model = MarkovModel(MarkovConfig(order=2)).fit(log)
    explanation = model.explain(["x", "y"], "z")
    positions = {c.position: c for c in explanation.contributions}
    assert positions[0].action == "x" and "4 times" in positions[0].detail  # (x, y) -> z seen 4 times
    assert positions[1].action == "y"
    assert explanation.probability == pytest.approx(np.exp(model.score(["x", "y"], "z")))


def test_save_load_round_trip(tmp_path, chain_log):
    split = leave_one_out(chain_log())
    model = MarkovModel(MarkovConfig(order=3)).fit(split.train)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, MarkovModel) and loaded.config.order == 3
    np.testing.assert_array_equal(model.predict_scores(split.test), loaded.predict_scores(split.test))
