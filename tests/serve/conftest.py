"""A real uvicorn server on a free 127.0.0.1 port, in a thread, over models saved in tmp dirs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from behaviorlab.schema import EventLog, Schema, Vocabulary

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install -e '.[serve]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    def __init__(self, url: str, server, thread: threading.Thread, state) -> None:
        self.url, self.server, self.thread, self.state = url, server, thread, state

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    """start_server(config, grounding=None, backend_factory=None) -> Running; stopped at the end of the test."""
    import uvicorn

    from behaviorlab.serve.app import create_app

    running: list[Running] = []

    def start(config, grounding=None, backend_factory=None) -> Running:
        port = free_port()
        config = config.model_copy(update={"port": port})
        gate = create_app(config, grounding, backend_factory)
        server = uvicorn.Server(uvicorn.Config(gate, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            assert thread.is_alive(), "the server thread died"
            time.sleep(0.02)
        run = Running(f"http://127.0.0.1:{port}", server, thread, gate.state)
        running.append(run)
        return run

    yield start
    for run in running:
        run.server.should_exit = True
        run.thread.join(timeout=30)


def chain(n_users: int, length: int, context: bool = False) -> EventLog:
    """Users walking a ring of 8 actions (a00 -> a01 -> ...); with context, phase y jumps 3 steps instead."""
    rng = np.random.default_rng(0)
    rows: dict[str, list] = {"user_id": [], "position": [], "action": [], "phase": []}
    for u in range(n_users):
        action = int(rng.integers(8))
        for t in range(length):
            phase = "x" if rng.random() < 0.5 else "y"
            action = (action + (1 if phase == "x" or not context else 3)) % 8 if t else action
            rows["user_id"].append(f"u{u:03d}")
            rows["position"].append(t)
            rows["action"].append(f"a{action:02d}")
            rows["phase"].append(phase)
    if not context:
        del rows["phase"]
    schema = Schema(name="chain", time="position", extras={"phase": "str"} if context else {})
    vocabulary = Vocabulary(tuple(f"a{i:02d}" for i in range(8)), {f"a{i:02d}": f"action {i}" for i in range(8)})
    return EventLog(pl.DataFrame(rows), schema, vocabulary)


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory) -> dict[str, Path]:
    """A Markov model, a SASRec reading a context column and an anomaly detector, saved in tmp dirs."""
    from behaviorlab.models.anomaly import AnomalyConfig, fit_detector
    from behaviorlab.models.base import TRAIN_DIGEST
    from behaviorlab.models.registry import create_model

    root = tmp_path_factory.mktemp("served")
    log = chain(40, 12)
    markov = create_model("markov").fit(log)
    markov.metadata_ = {TRAIN_DIGEST: log.digest()}
    markov.save(root / "markov")
    sasrec = create_model("sasrec", epochs=1, embedding_dim=16, inner_size=16, max_len=8, context_columns=["phase"],
                          threads=1).fit(chain(40, 12, context=True))
    sasrec.save(root / "sasrec")
    users = log.users()
    train, valid = log.filter(pl.col("user_id").is_in(users[:30])), log.filter(pl.col("user_id").is_in(users[30:]))
    fit_detector(create_model("markov"), train, valid, AnomalyConfig(context_column=None)).save(root / "detector")
    return {"markov": root / "markov", "sasrec": root / "sasrec", "detector": root / "detector"}


@pytest.fixture(scope="session")
def ring_log() -> Callable[..., EventLog]:
    """`chain` for tests that build their own models."""
    return chain


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def grounding(tiny_log) -> EventLog:
    """tiny_log with every on/off-style command joined into one word ('Light:switch on' -> 'Light:switch_on').

    The JSON schema fixes a completion's codes and length, so what can still reject a sequence of the small
    model is a domain rule ('on' twice without 'off' between, generate.rules); with no state commands there
    is no rule, and every completion is a valid sequence."""
    renamed = {a: a.rsplit(" ", 1)[0] + "_" + a.rsplit(" ", 1)[1] if " " in a else a for a in tiny_log.vocabulary.actions}
    frame = tiny_log.frame.with_columns(pl.col("action").replace(renamed))
    return EventLog(frame, tiny_log.schema, Vocabulary.from_actions(sorted(set(renamed.values()))))
