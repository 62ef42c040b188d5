"""The ray engine against the local one with the real test model (smollm2-135m) in a 2-CPU local Ray session:
byte-identical output for the same seed, and an actor killed mid-run changes nothing in the store."""

import os
import signal
import sqlite3
import sys
import threading

import pytest

from behaviorlab.errors import ConfigError
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.engine import RayBackend, create_engine_backend, map_tasks
from behaviorlab.generate.run import PARQUET_FILE, STORE_FILE, run_generation
from behaviorlab.llm.base import ChatMessage, ChatRequest
from behaviorlab.llm.config import LLMConfig

# 3 profiles x 2 sequences: prefix reuse within a profile, batches that hold whole profiles over 2 actors
SMALL = {"n_users": 6, "sequences_per_profile": 2, "length": 4, "n_exemplars": 2, "n_neighbours": 4, "n_strata": 3,
         "batch_size": 4, "max_attempts": 2, "seed": 3}
LLM = {"model": "smollm2-135m", "parallel": 1, "threads": 1, "context_per_slot": 1024, "use_cache": False}
# what fixes a run's output: everything of an attempt but its latency
ATTEMPT = "SELECT idx, slot, attempt, seed, status, completion, failure, prompt_tokens, completion_tokens FROM attempts"


def _rows(out, query):
    with sqlite3.connect(out / STORE_FILE) as db:
        return db.execute(query).fetchall()


def _run(log, out, engine, progress=None):
    config = GenerateConfig(**SMALL, llm=LLMConfig(**LLM))
    backend = create_engine_backend(engine, config.llm, actors=2 if engine == "ray" else None)
    try:
        run_generation(log, out, config, backend, progress)
    finally:
        backend.close()
    return backend


@pytest.mark.llm
@pytest.mark.slow
def test_the_ray_engine_writes_byte_identical_output_and_survives_a_killed_actor(tmp_path, tiny_log, smollm2_path,
                                                                                  ray_cpus):
    _run(tiny_log, tmp_path / "local", "local")
    _run(tiny_log, tmp_path / "ray", "ray")
    local, on_ray = (tmp_path / name for name in ("local", "ray"))
    assert (on_ray / PARQUET_FILE).read_bytes() == (local / PARQUET_FILE).read_bytes()
    assert _rows(on_ray, ATTEMPT) == _rows(local, ATTEMPT)
    assert _rows(on_ray, "SELECT * FROM sequences") == _rows(local, "SELECT * FROM sequences")
    assert len(_rows(local, "SELECT * FROM sequences")) >= 3

    # kill -9 an actor while the second batch is out: Ray restarts it (and retries its call if one was running)
    killed = []
    backend_box = {}

    def kill_when_the_second_batch_goes_out(done, total, info=None):
        if not killed and "accepted" in (info or {}):  # the first batch is recorded
            pid = backend_box["ray"].actor_pids()[0]  # actor 0 gets the first group of every batch
            threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
            killed.append(pid)

    config = GenerateConfig(**SMALL, llm=LLMConfig(**LLM))
    backend = RayBackend(config.llm, actors=2)
    backend_box["ray"] = backend
    try:
        run_generation(tiny_log, tmp_path / "killed", config, backend, kill_when_the_second_batch_goes_out)
        assert killed and backend.actor_pids()[0] != killed[0]  # it was killed and came back as a new process
    finally:
        backend.close()
    killed_out = tmp_path / "killed"
    assert (killed_out / PARQUET_FILE).read_bytes() == (local / PARQUET_FILE).read_bytes()
    assert _rows(killed_out, ATTEMPT) == _rows(local, ATTEMPT)  # nothing lost, nothing recorded twice
    assert _rows(killed_out, "SELECT COUNT(*) FROM batches") == _rows(local, "SELECT COUNT(*) FROM batches")


@pytest.mark.llm
def test_groups_of_reused_prefixes_stay_on_one_actor_across_calls(smollm2_path, ray_cpus):
    backend = RayBackend(LLMConfig(**LLM), actors=2)
    try:
        def request(text, reuse):
            return ChatRequest((ChatMessage("user", text),), reuse_prefix=reuse)

        first = backend._assign([request("a", False), request("a2", True), request("b", False), request("b2", True)])
        assert first == [[0, 1], [2, 3]]
        # a call that continues the previous call's last group: on that group's actor
        assert backend._assign([request("b3", True), request("c", False)]) == [[1], [0]]
        assert backend.count_tokens("hello world") > 0
    finally:
        backend.close()


def test_an_unknown_engine_is_refused_and_a_missing_ray_says_how_to_install_it(monkeypatch):
    with pytest.raises(ConfigError, match="Unknown engine"):
        create_engine_backend("spark", LLMConfig(**LLM))
    with pytest.raises(ConfigError, match="Unknown engine"):
        list(map_tasks("spark", max, 0, [1]))
    assert list(map_tasks("local", max, 2, [1, 3])) == [(0, 2), (1, 3)]
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does without the extra
    with pytest.raises(ConfigError, match="needs Ray") as refused:
        create_engine_backend("ray", LLMConfig(**LLM))
    assert "behaviorlab[ray]" in refused.value.hint
