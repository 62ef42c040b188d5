"""The HTTP backend against real servers on 127.0.0.1: a scripted faulty one, and llama.cpp with smollm2."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from behaviorlab.llm.base import ChatMessage, ChatRequest, SamplingSettings
from behaviorlab.llm.http_backend import HttpBackend
from behaviorlab.llm.retry import RetryPolicy

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
GOOD = '{"action":"light_on"}'


class FaultServer:
    """An OpenAI-style server whose behaviour is chosen by the user message ("scenario:<name>").

    Every arrival is counted per scenario, so tests can tell how many attempts a request took.
    """

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                scenario = body["messages"][-1]["content"].removeprefix("scenario:")
                with owner.lock:
                    owner.hits[scenario] += 1
                    owner.bodies.append(body)
                    hit = owner.hits[scenario]
                owner.respond(self, scenario, hit, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, handler: BaseHTTPRequestHandler, scenario: str, hit: int, body: dict) -> None:
        if scenario == "ok" or (scenario.endswith("_once") and hit > 1):
            return _send(handler, 200, _completion(GOOD))
        if scenario == "rate_limited_once":
            return _send(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        if scenario in ("error_once", "always_500"):
            return _send(handler, 500, {"error": {"message": "boom"}})
        if scenario == "garbage":
            return _send_raw(handler, 200, b"<html>502 bad gateway</html>", "text/html")
        if scenario == "slow":
            time.sleep(1.5)  # longer than the client's timeout
            return _send(handler, 200, _completion(GOOD))
        if scenario == "drop_once":
            handler.close_connection = True  # hang up without a status line
            return None
        if scenario == "auth":  # echo the credential back, as careless servers do
            return _send(handler, 401, {"error": {"message": f"bad key {handler.headers['Authorization']}"}})
        if scenario == "missing":
            return _send(handler, 404, {"error": {"message": "no such model"}})
        if scenario == "invalid":
            return _send(handler, 200, _completion("Sure! light_on"))
        if scenario == "no_response_format":
            if "response_format" in body:
                return _send(handler, 400, {"error": {"message": "response_format is not supported"}})
            return _send(handler, 200, _completion(GOOD))
        return _send(handler, 400, {"error": {"message": f"unknown scenario {scenario}"}})


def _completion(text: str) -> dict:
    return {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}}


def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict, headers: dict | None = None) -> None:
    _send_raw(handler, status, json.dumps(payload).encode(), "application/json", headers)


def _send_raw(handler, status, data, content_type, headers=None) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
        pass


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


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
