"""`behaviorlab generate --backend http` against a misbehaving server on 127.0.0.1 (FaultServer in conftest).

Each fault ends in a clear exit code and first line, with no traceback and nothing half-written (no
manifest, no synthetic log, no attempt recorded for a fault that is the server's), and the same
command completes the run once the server is fixed. No piece of a secret reaches any output.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from behaviorlab.cli import main
from behaviorlab.datasets import write_event_log

KEY = "sk-Zq8vX2mT9pL4wR7nB3cY6hJ1kD5fG0sQeUaWiEo"
# Seconds, not minutes: one retry, short backoff, short timeouts (the server's "slow" is 1.5 s).
FAST_LLM = {"max_retries": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.2, "timeout_s": 1.0,
            "connect_timeout_s": 0.5}


@dataclass
class Run:
    out: Path
    args: list[str]


def _toml(values: dict) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())


@pytest.fixture
def cli_env(tmp_path, tiny_log, monkeypatch, fault_server) -> Path:
    """Data on disk, the server's address and a long key in the environment, a private completions cache."""
    monkeypatch.setenv("BEHAVIORLAB_BASE_URL", fault_server.base_url)
    monkeypatch.setenv("BEHAVIORLAB_API_KEY", KEY)
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "tiny.parquet"
    write_event_log(tiny_log, data)
    return data


def _job(tmp_path: Path, data: Path, name: str, generate: dict | None = None, llm: dict | None = None) -> Run:
    config = tmp_path / f"{name}.toml"
    config.write_text(f"[generate]\n{_toml(generate or {})}\n[generate.llm]\n{_toml(FAST_LLM | (llm or {}))}\n")
    out = tmp_path / name
    return Run(out, ["generate", "--data", str(data), "--out", str(out), "--n-users", "4", "--length", "4",
                     "--backend", "http", "--model", "test-model", "--config", str(config)])


def _run(run: Run, capsys) -> tuple[int, str, str]:
    code = main(run.args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def _error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("error:"))


def _attempts(out: Path) -> int:
    if not (out / "run.sqlite").exists():
        return 0
    with sqlite3.connect(out / "run.sqlite") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] if "attempts" in tables else 0


def _assert_nothing_half_written(out: Path) -> None:
    assert not (out / "manifest.json").exists() and not (out / "synthetic.parquet").exists()
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    assert _attempts(out) == 0


# server mode -> the start of the message's first line after "error: " (PORT is the server's port)
SERVER_FAULTS = {
    "bad_request": "The LLM backend (http, test-model) rejected all 4 requests of a batch: bad_request: "
                   "http://127.0.0.1:PORT/v1/chat/completions rejected the request (HTTP 400): unsupported "
                   "parameter: seed",
    "ignore_schema": "The LLM backend (http, test-model) does not honour the JSON schema: all 4 requests of a batch "
                     "came back with output that breaks it: invalid_output: output is not JSON",
    "rate_limited": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: rate_limited: "
                    "http://127.0.0.1:PORT/v1/chat/completions is rate limiting (HTTP 429): slow down",
    "always_500": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: server_error: "
                  "http://127.0.0.1:PORT/v1/chat/completions failed with HTTP 500: boom",
    "garbage": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: server_error: the server's "
               "answer is not a chat completion: '<html>502 bad gateway</html>'",
    "slow": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: timeout: no complete answer from "
            "http://127.0.0.1:PORT/v1/chat/completions within 1 s",
    "hang": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: timeout: http://127.0.0.1:PORT/v1 "
            "accepted the connection but did not answer GET /models within 0.5 s (gave up after 2 attempts at first "
            "contact)",
    "drop": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: connection: RemoteProtocolError "
            "talking to http://127.0.0.1:PORT/v1/chat/completions: Server disconnected without sending a response.",
    "auth": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: auth: "
            "http://127.0.0.1:PORT/v1/chat/completions refused the credentials (HTTP 401): bad key Bearer ***",
    "missing": "The LLM backend (http, test-model) failed 4 of 4 requests of a batch: not_found: "
               "http://127.0.0.1:PORT/v1/chat/completions answered HTTP 404: no such model",
}


@pytest.mark.parametrize("mode", sorted(SERVER_FAULTS))
def test_a_faulty_server_stops_generate_with_exit_4_and_once_fixed_the_same_command_completes(
        mode, tmp_path, cli_env, fault_server, capsys):
    run = _job(tmp_path, cli_env, "run")
    fault_server.mode = mode
    started = time.perf_counter()
    code, out, err = _run(run, capsys)
    port = fault_server.base_url.split(":")[-1].split("/")[0]
    assert code == 4, err
    assert _error_line(err).startswith("error: " + SERVER_FAULTS[mode].replace("PORT", port)), err
    assert "re-run the same command" in err  # the hint says how to go on
    assert "synthetic sequences" not in out
    _assert_nothing_half_written(run.out)
    assert time.perf_counter() - started < 10
    if mode == "hang":  # the wait was shown while it lasted
        assert (f"{fault_server.base_url} accepted the connection but did not answer GET /models within 0.5 s "
                "(attempt 1 of 2 at first contact); retrying in") in err

    fault_server.mode = "ok"
    code, out, err = _run(run, capsys)
    assert code == 0, err
    assert "4 synthetic sequences" in out
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["attempts"]["failed"] == 0 and manifest["attempts"]["accepted"] == 4


@pytest.mark.parametrize("mode", ["rate_limited_once", "error_once", "drop_once"])
def test_a_passing_fault_is_retried_and_the_run_completes(mode, tmp_path, cli_env, fault_server, capsys):
    run = _job(tmp_path, cli_env, "run")
    fault_server.mode = mode
    code, out, err = _run(run, capsys)
    assert code == 0, err
    assert "4 synthetic sequences" in out and fault_server.hits[mode] == 5  # one request was sent twice


def test_an_answer_that_breaks_the_schema_for_one_profile_is_recorded_as_its_failure(tmp_path, cli_env, fault_server,
                                                                                      capsys):
    run = _job(tmp_path, cli_env, "run")
    fault_server.mode = "invalid_once"  # the first request gets prose, every other one a valid answer
    code, _, err = _run(run, capsys)
    assert code == 0, err
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert manifest["attempts"] == {"attempts": 5, "accepted": 4, "rejected": 0, "failed": 1}
    assert manifest["issues"] == {"backend failure": 1}


def test_a_dead_port_stops_generate_quickly_at_default_settings(tmp_path, cli_env, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("BEHAVIORLAB_BASE_URL", f"http://127.0.0.1:{port}/v1")
    out = tmp_path / "run"
    args = ["generate", "--data", str(cli_env), "--out", str(out), "--n-users", "4", "--backend", "http",
            "--model", "test-model"]
    started = time.perf_counter()
    code = main(args)
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 4 and "Traceback" not in err
    assert _error_line(err).startswith(f"error: The LLM backend (http, test-model) failed 4 of 4 requests of a batch: "
                                       f"connection: cannot connect to http://127.0.0.1:{port}/v1: ConnectError: All "
                                       "connection attempts failed (gave up after 5 attempts at first contact)")
    # refused connections cost no timeout: only the backoff between 5 attempts, 1 + 2 + 4 + 8 s at most
    assert elapsed < 15 + 5, elapsed
    _assert_nothing_half_written(out)


def _pieces(secret: str) -> set[str]:
    return {secret[start:start + 8] for start in range(len(secret) - 7)}


def _everything_written(root: Path) -> str:
    """Every file under `root` as text: raw bytes, SQLite dumps (WAL included) and Parquet as CSV."""
    texts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        texts.append(path.read_bytes().decode("utf-8", errors="replace"))
        if path.suffix == ".sqlite":
            with sqlite3.connect(path) as db:
                texts += list(db.iterdump())
        if path.suffix == ".parquet":
            texts.append(pl.read_parquet(path).write_csv())
    return "\n".join(texts)


def test_no_piece_of_a_key_or_url_password_reaches_any_output(tmp_path, cli_env, fault_server, monkeypatch, capsys,
                                                               caplog):
    caplog.set_level("DEBUG")
    shown = []
    # 1. A server that echoes the request headers into error bodies and 200 bodies, with LLM personas (answers
    #    without a schema, stored in the cache and in the prompts): the run completes, echoes recorded.
    fault_server.mode = "echo"
    echo = _job(tmp_path, cli_env, "echo", generate={"persona": "llm"}, llm={"structured_output": "response_format"})
    code, out, err = _run(echo, capsys)
    assert code == 0, err
    assert _attempts(echo.out) > 4  # echoed errors and echoed answers were recorded as failures
    shown += [out, err]
    # 2. A server that echoes the key in a 401: exit 4, the echo in the message.
    fault_server.mode = "auth"
    code, out, err = _run(_job(tmp_path, cli_env, "auth"), capsys)
    assert code == 4 and "Bearer ***" in _error_line(err)
    shown += [out, err]
    # 3. Credentials in the server URL (here from the config file, so the manifest's config holds it): sent as
    #    Basic auth, which the echoing server sends back.
    password = "hunter2-correct-horse-battery"
    url = fault_server.base_url.replace("http://", f"http://svc-alice:{password}@")
    fault_server.mode = "echo"
    code, out, err = _run(_job(tmp_path, cli_env, "userinfo", llm={"base_url": url,
                                                                   "structured_output": "response_format"}), capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "userinfo" / "manifest.json").read_text())
    assert manifest["config"]["llm"]["base_url"] == fault_server.base_url.replace("http://", "http://***@")
    shown += [out, err]
    # 4. The same URL pointing at a dead port (BEHAVIORLAB_BASE_URL): the connection error names the URL.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://svc-alice:{password}@127.0.0.1:{probe.getsockname()[1]}/v1"
    monkeypatch.setenv("BEHAVIORLAB_BASE_URL", dead)
    code, out, err = _run(_job(tmp_path, cli_env, "dead"), capsys)
    assert code == 4 and "http://***@127.0.0.1:" in _error_line(err)
    shown += [out, err]

    written = [_everything_written(tmp_path / name) for name in ("echo", "auth", "userinfo", "dead", "cache")]
    everything = "\n".join(shown + [caplog.text] + written)
    basic = base64.b64encode(f"svc-alice:{password}".encode()).decode()
    for secret in (KEY, password, basic, "svc-alice"):
        assert not {piece for piece in _pieces(secret) if piece in everything}, secret
    assert "***" in written[0] and "***" in written[-1]  # the echoes were stored, masked, in the run and the cache
