"""The embedded llama.cpp backend with the real 135M model."""

import json

import pytest

from behaviorlab.llm.base import ChatMessage, ChatRequest, SamplingSettings
from behaviorlab.llm.embedded import request_body

pytestmark = pytest.mark.llm


def _request(text: str, schema: dict | None, max_tokens: int = 24, seed: int = 0) -> ChatRequest:
    return ChatRequest((ChatMessage("system", "You control a smart home."), ChatMessage("user", text)),
                       json_schema=schema, sampling=SamplingSettings(temperature=0.9, max_tokens=max_tokens, seed=seed))


def test_every_completion_in_a_batch_is_schema_valid_compact_json(smollm2_backend, action_schema):
    requests = [_request(f"It is {hour}:00 and user {i} is at home. What is the next action?", action_schema, seed=i)
                for i, hour in enumerate([7, 12, 18, 23])]
    progress = []
    results = smollm2_backend.complete(requests, progress=lambda done, total, info=None: progress.append((done, total)))
    assert [r.request for r in results] == requests
    assert all(r.ok for r in results), [r.failure for r in results]
    for result in results:
        text = result.completion.text
        assert json.loads(text)["action"] in action_schema["properties"]["action"]["enum"]
        assert " " not in text and "\n" not in text  # compact: no output tokens spent on whitespace
        assert result.completion.prompt_tokens > 10 and result.completion.completion_tokens > 0
    assert progress[-1] == (4, 4) and len(progress) == 4


def test_bad_requests_and_cut_off_json_fail_alone(smollm2_backend, action_schema):
    too_long = _request("word " * 3000, None)  # beyond the 512-token slot context
    cut_off = _request("Next action?", action_schema, max_tokens=2)  # JSON cannot close in 2 tokens
    fine = _request("Next action?", action_schema)
    results = smollm2_backend.complete([too_long, cut_off, fine])
    assert results[0].failure is not None and results[0].failure.kind == "bad_request"
    assert "context" in results[0].failure.message
    assert results[1].failure is not None and results[1].failure.kind == "invalid_output"
    assert "finish_reason=length" in results[1].failure.message
    assert results[1].failure.output.startswith("{") and results[1].failure.completion_tokens == 2
    assert results[2].ok


def test_free_text_without_schema(smollm2_backend):
    result = smollm2_backend.complete([_request("Say hello.", None, max_tokens=8)])[0]
    assert result.ok and result.completion.text.strip() and result.completion.completion_tokens <= 8


def test_count_tokens_uses_the_models_tokenizer(smollm2_backend):
    short = smollm2_backend.count_tokens("turn on the light")
    longer = smollm2_backend.count_tokens("turn on the light in the kitchen and then the television in the living room")
    assert 0 < short < longer


def test_request_body_maps_sampling_and_schema(action_schema):
    body = request_body(_request("x", action_schema, max_tokens=5, seed=7))
    assert body["max_tokens"] == 5 and body["seed"] == 7 and body["temperature"] == 0.9
    assert body["grammar"].startswith("%llguidance") and [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "seed" not in request_body(ChatRequest((ChatMessage("user", "x"),)))
