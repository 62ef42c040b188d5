"""The zero-shot LLM predictor: prompts, rank scores, counted failures, and a real small model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from behaviorlab.errors import ConfigError
from behaviorlab.llm.base import Failure
from behaviorlab.metrics import ranking_report
from behaviorlab.models.registry import create_model, load_model
from behaviorlab.models.zero_shot import ZeroShotConfig, ZeroShotLLMModel
from behaviorlab.sequences import NextEventExamples


def answer(*labels: str) -> str:
    return json.dumps({"next": list(labels)})


@pytest.fixture
def log(chain_log):
    return chain_log(n_users=4, length=6)


def examples(n: int, context: dict | None = None) -> NextEventExamples:
    return NextEventExamples([f"u{i}" for i in range(n)], [["a00", "a01"]] * n, ["a02"] * n, context or {})


def test_fit_keeps_only_the_vocabulary(log, fake):
    backend = fake(lambda request, _: answer("action number 1"))
    model = ZeroShotLLMModel(ZeroShotConfig(top_k=1), backend=backend).fit(log)
    assert model.vocabulary == log.vocabulary and backend.calls == 0


def test_scores_follow_the_ranking(log, fake):
    backend = fake(lambda request, _: answer("action number 3", "action number 1", "action number 7"))
    model = ZeroShotLLMModel(ZeroShotConfig(top_k=3), backend=backend).fit(log)
    scores = model.predict_scores(examples(2))
    assert scores.shape == (2, 12) and scores.dtype == np.float32
    row = scores[0]
    assert row[3] > row[1] > row[7] > row[0]
    others = np.delete(row, [1, 3, 7])
    assert np.allclose(others, others[0])                      # unlisted actions tie
    assert np.exp(row.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)
    assert model.predict_next(["a00"], k=2)[0][0] == "a03"
    assert model.failure_report() == {"requests": 3, "failures": 0}


def test_request_constrains_to_the_vocabulary_and_describes_history_and_context(log, fake):
    backend = fake(lambda request, _: answer("action number 2", "action number 4"))
    model = ZeroShotLLMModel(ZeroShotConfig(top_k=2, history_length=1), backend=backend).fit(log)
    model.predict_scores(examples(1, {"weekday": ["Mon"], "hour_bin": ["(6~9)"]}))
    request = backend.requests[0]
    items = request.json_schema["properties"]["next"]
    assert items["minItems"] == items["maxItems"] == 2
    assert items["items"]["enum"] == [f"action number {i}" for i in range(12)]
    prompt = request.messages[-1].content
    assert "action number 1" in prompt and "1. action number 0" not in prompt  # only the last history_length events
    assert "weekday Mon" in prompt and "hour bin (6~9)" in prompt
    assert request.sampling.temperature == 0.0


def test_failures_are_counted_by_kind_and_never_filled_in(log, fake):
    script = [answer("action number 2"), "not json", answer("no such action"),
              Failure("timeout", "slow", attempts=3), answer("action number 2", "action number 2")]
    backend = fake(lambda request, n: script[n % len(script)])
    model = ZeroShotLLMModel(ZeroShotConfig(top_k=1), backend=backend).fit(log)
    scores = model.predict_scores(examples(5))
    assert model.failures_ == {"invalid_output": 1, "unknown_action": 1, "timeout": 1}
    assert model.failure_report()["failures"] == 3
    for row in (1, 2, 3):
        assert np.allclose(scores[row], scores[row][0])         # flat: no prediction was made up
    assert scores[0].argmax() == 2 and scores[4].argmax() == 2   # a repeated answer counts once
    report = ranking_report(model, examples(5), ks=(1,))
    assert report["HR@1"] == pytest.approx(2 / 5)                 # failed rows are misses (ties go against)


def test_save_load_and_registry(log, fake, tmp_path):
    model = create_model("zero-shot-llm", top_k=2).fit(log)
    model.save(tmp_path / "zs")
    loaded = load_model(tmp_path / "zs")
    assert isinstance(loaded, ZeroShotLLMModel) and loaded.config == model.config
    loaded.backend = fake(lambda request, _: answer("action number 5", "action number 6"))
    assert loaded.predict_next(["a00"], k=1)[0][0] == "a05"
    assert loaded.domain_ == log.schema.action_meaning


def test_config_refuses_an_api_key():
    with pytest.raises(ConfigError, match="API key"):
        create_model("zero-shot-llm", llm={"backend": "http", "api_key": "sk-secret"})


@pytest.mark.llm
def test_real_small_model_answers_inside_the_vocabulary(make_log, smollm2_backend):
    """smollm2-135m through the embedded backend: every answer parses to vocabulary actions."""
    log = make_log(n_users=6, length=5)
    model = ZeroShotLLMModel(ZeroShotConfig(top_k=3, max_tokens=96), backend=smollm2_backend).fit(log)
    histories = [actions[:-1] for actions in log.action_sequences().values()]
    probe = NextEventExamples([f"u{i}" for i in range(len(histories))], histories, [h[-1] for h in histories])
    scores = model.predict_scores(probe)
    assert model.failure_report() == {"requests": len(histories), "failures": 0}
    for row in scores:
        top = np.argsort(-row)[:3]
        assert len({round(float(row[j]), 6) for j in top}) == 3       # three distinct ranked actions
        assert all(log.vocabulary.actions[j] in log.vocabulary for j in top)
