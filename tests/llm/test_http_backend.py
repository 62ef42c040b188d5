"""The HTTP backend against real servers on 127.0.0.1: the faulty one of conftest.py, and llama.cpp with smollm2."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time

import pytest
from pydantic import SecretStr

from behaviorlab.llm.base import ChatMessage, ChatRequest, SamplingSettings
from behaviorlab.llm.http_backend import HttpBackend
from behaviorlab.llm.retry import RetryPolicy

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
GOOD = '{"action":"light_on"}'  # what the fault server (tests/conftest.py) answers to the action schema


def _request(text: str, schema: dict | None) -> ChatRequest:
    return ChatRequest((ChatMessage("user", text),), json_schema=schema, sampling=SamplingSettings(max_tokens=16, seed=1))


def _backend(base_url: str, **kwargs) -> HttpBackend:
    retry = RetryPolicy(max_retries=2, base_s=0.01, max_s=2.0, rng=random.Random(0))
    return HttpBackend(base_url, "test-model", api_key=SecretStr(SECRET), parallel=4, timeout_s=0.5, retry=retry,
                       **kwargs)


def test_every_fault_path_in_one_batch_and_finished_requests_are_kept(fault_server, action_schema, caplog):
    scenarios = ["ok", "rate_limited_once", "error_once", "always_500", "garbage", "slow", "drop_once", "auth",
                 "missing", "invalid", "ok"]
    backend = _backend(fault_server.base_url)
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    results = backend.complete([_request(f"scenario:{name}", action_schema) for name in scenarios])
    elapsed = time.perf_counter() - started
    by_name = dict(zip(scenarios, results))

    assert [r.request.messages[-1].content for r in results] == [f"scenario:{n}" for n in scenarios]  # in order
    for name in ("ok", "rate_limited_once", "error_once", "drop_once"):
        assert by_name[name].ok and by_name[name].completion.text == GOOD, name
        assert by_name[name].completion.prompt_tokens == 7 and by_name[name].completion.completion_tokens == 3
    assert results[-1].ok
    # Retried until the server recovered: one extra arrival each.
    assert fault_server.hits["rate_limited_once"] == fault_server.hits["error_once"] == 2
    assert fault_server.hits["drop_once"] == 2
    assert elapsed >= 1.0  # Retry-After: 1 was honoured although the backoff step is 10 ms

    expected = {"always_500": ("server_error", 3), "garbage": ("server_error", 3), "slow": ("timeout", 3),
                "auth": ("auth", 1), "missing": ("not_found", 1), "invalid": ("invalid_output", 1)}
    for name, (kind, attempts) in expected.items():
        failure = by_name[name].failure
        assert failure is not None and (failure.kind, failure.attempts) == (kind, attempts), (name, failure)
        assert fault_server.hits[name] == attempts, name
    assert "BEHAVIORLAB_API_KEY" in by_name["auth"].failure.message  # says what to fix
    assert "/v1" in by_name["missing"].failure.message
    assert by_name["invalid"].failure.output == "Sure! light_on" and by_name["invalid"].failure.completion_tokens == 3

    # The key never leaks: not in the echoed 401 message, the logs, or the repr.
    assert SECRET not in by_name["auth"].failure.message and "***" in by_name["auth"].failure.message
    assert SECRET not in caplog.text and "retrying" in caplog.text
    assert SECRET not in repr(backend)
    # ... but it is what the server received.
    assert all(body["model"] == "test-model" for body in fault_server.bodies)


def test_schema_goes_into_the_prompt_when_the_server_refuses_response_format(fault_server, action_schema):
    backend = _backend(fault_server.base_url, structured_output="auto")
    first = backend.complete([_request("scenario:no_response_format", action_schema)])
    assert first[0].ok and first[0].completion.text == GOOD
    second = backend.complete([_request("scenario:no_response_format", action_schema)])
    assert second[0].ok
    # One refusal, then every request carries the schema as a system message instead.
    refused, *rest = fault_server.bodies
    assert "response_format" in refused and all("response_format" not in body for body in rest)
    assert all(body["messages"][0]["role"] == "system" and '"light_on"' in body["messages"][0]["content"]
               for body in rest)


def test_in_flight_requests_are_bounded(fault_server):
    active = 0
    peak = 0
    lock = threading.Lock()
    original = fault_server.respond

    def counting(handler, scenario, hit, body):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        original(handler, scenario, hit, body)

    fault_server.respond = counting
    backend = _backend(fault_server.base_url)
    backend.parallel = 2
    results = backend.complete([_request("scenario:ok", None) for _ in range(8)])
    assert all(r.ok for r in results) and peak == 2


LONG_KEY = "sk-Zq8vX2mT9pL4wR7nB3cY6hJ1kD5fG0sQeUaWiEo"


def _pieces(secret: str) -> set[str]:
    return {secret[start:start + 8] for start in range(len(secret) - 7)}


def _texts(results) -> list[str]:
    """Every text a batch's results carry out of the backend."""
    texts = []
    for result in results:
        if result.completion is not None:
            texts.append(result.completion.text)
        else:
            texts += [result.failure.message, result.failure.output or ""]
    return texts


def test_no_piece_of_the_key_leaves_the_backend_when_the_server_echoes_it(fault_server, action_schema, caplog):
    caplog.set_level(logging.DEBUG)
    retry = RetryPolicy(max_retries=1, base_s=0.01, rng=random.Random(0))
    backend = HttpBackend(fault_server.base_url, "test-model", api_key=SecretStr(LONG_KEY), timeout_s=0.5, retry=retry)
    fault_server.mode = "echo"
    results = backend.complete([_request("hi", action_schema) for _ in range(6)] + [_request("persona", None)])
    assert {r.failure.kind for r in results if r.failure} == {"bad_request", "invalid_output"} and results[-1].ok
    fault_server.mode = "auth"
    results += backend.complete([_request("hi", action_schema)])
    shown = "\n".join(_texts(results) + [caplog.text, repr(backend)])
    assert "Bearer ***" in shown and not {piece for piece in _pieces(LONG_KEY) if piece in shown}


def test_url_credentials_are_sent_as_basic_auth_and_never_shown(fault_server, action_schema, caplog):
    caplog.set_level(logging.DEBUG)
    password = "hunter2-correct-horse-battery"
    url = fault_server.base_url.replace("http://", f"http://svc-alice:{password}@")
    backend = _backend(url)
    fault_server.mode = "auth"
    failure = backend.complete([_request("hi", action_schema)])[0].failure
    basic = base64.b64encode(f"svc-alice:{password}".encode()).decode()
    assert failure.kind == "auth" and "Basic ***" in failure.message  # the server got the credential ...
    assert backend.base_url == fault_server.base_url.replace("http://", "http://***@")
    shown = "\n".join([failure.message, caplog.text, repr(backend), backend.base_url])
    for secret in (password, basic, "svc-alice"):  # ... and nothing shows it
        assert not {piece for piece in _pieces(secret) if piece in shown}, secret


def test_the_first_contact_check_gives_up_on_a_silent_server_within_the_connect_timeout(fault_server, action_schema):
    fault_server.mode = "hang"  # accepts connections, never answers
    backend = _backend(fault_server.base_url, connect_timeout_s=0.3)
    backend.timeout_s = 30.0  # a request would wait this long: the check must not
    started = time.perf_counter()
    results = backend.complete([_request("hi", action_schema) for _ in range(6)])
    assert time.perf_counter() - started < 3 * 0.3 + 1.0  # three checks of 0.3 s and short backoffs
    assert all(r.failure.kind == "timeout" for r in results) and fault_server.hits["hang"] == 0
    assert "did not answer" in results[0].failure.message and "first contact" in results[0].failure.message


def test_progress_says_what_each_attempt_waits_for(fault_server, action_schema):
    statuses = []
    backend = _backend(fault_server.base_url)
    fault_server.mode = "slow"
    backend.complete([_request("hi", action_schema)],
                     progress=lambda done, total, info=None: statuses.append((info or {}).get("waiting")))
    for attempt in (1, 2, 3):
        status = f"waiting for {fault_server.base_url} (request 1 of 1, attempt {attempt} of 3, 0.5 s timeout)"
        assert status in statuses


def test_the_wait_budgets_at_default_settings():
    """What the README states: a server that never answers is given up at first contact within about a minute."""
    from behaviorlab.llm.config import LLMConfig
    from behaviorlab.llm.http_backend import create_http

    backend = create_http(LLMConfig(backend="http", base_url="http://127.0.0.1:9/v1"))
    assert (backend.connect_timeout_s, backend.timeout_s, backend.retry.max_retries) == (10.0, 120.0, 4)
    assert backend.retry.backoff_total_s() == 1 + 2 + 4 + 8
    assert backend.first_contact_budget_s() == 5 * 10 + 15
    assert backend.request_budget_s() == 5 * 120 + 15


@pytest.mark.llm
def test_real_openai_compatible_server_returns_schema_valid_json(smollm2_backend, action_schema):
    """llama.cpp's own HTTP server (from xllamacpp) with the real model behind it."""
    backend = HttpBackend(smollm2_backend.http_address + "/v1", "smollm2-135m", parallel=2, timeout_s=60)
    requests = [ChatRequest((ChatMessage("user", f"Smart-home user {i} comes home. Next action?"),),
                            json_schema=action_schema, sampling=SamplingSettings(max_tokens=24, seed=i))
                for i in range(2)]
    results = backend.complete(requests)
    assert all(r.ok for r in results), [r.failure for r in results]
    for result in results:
        assert json.loads(result.completion.text)["action"] in action_schema["properties"]["action"]["enum"]
        assert result.completion.prompt_tokens > 0 and result.completion.completion_tokens > 0
    assert backend._response_format_ok is True  # the server took the schema natively
    assert backend.count_tokens("hello world, how are you?") == smollm2_backend.count_tokens("hello world, how are you?")
