"""`behaviorlab serve` as a process: SIGHUP swaps in the re-saved models and a rebuilt /generate backend while
requests keep being answered; a backend that cannot be rebuilt leaves the old one serving."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import behaviorlab


@contextmanager
def serving(port: int, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`behaviorlab serve ARGS --port PORT` in its own process, once /healthz answers; ended at the end."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(behaviorlab.__file__)))
    process = subprocess.Popen([sys.executable, "-m", "behaviorlab", "serve", *args, "--port", str(port)], env=env,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        yield process, url
        assert process.poll() is None  # SIGHUP did not end the process
    finally:
        process.terminate()
        process.wait(timeout=30)


def log_events(log: Path, event: str) -> list[dict]:
    return [line for line in map(json.loads, log.read_text().splitlines()) if line.get("event") == event]


def wait_for(condition: Callable[[], object], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sighup_reloads_the_models_without_dropping_requests(tmp_path, ring_log, port):
    from behaviorlab.models.registry import create_model

    model_dir = tmp_path / "m"
    create_model("popularity").fit(ring_log(20, 6)).save(model_dir)
    with serving(port, "--model", f"m={model_dir}") as (process, url):
        before = httpx.get(f"{url}/models").json()
        statuses, stop = [], threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    statuses.append(client.post("/predict", json={"history": ["a00"], "k": 2}).status_code)

        worker = threading.Thread(target=hammer)
        worker.start()
        create_model("markov").fit(ring_log(20, 6)).save(model_dir)  # replaced on disk, then reloaded
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: httpx.get(f"{url}/models").json()["loaded_at"] != before["loaded_at"])
        after = httpx.get(f"{url}/models").json()
        time.sleep(0.3)
        stop.set()
        worker.join()
    assert before["models"][0]["kind"] == "popularity" and after["models"][0]["kind"] == "markov"
    assert len(statuses) > 5 and set(statuses) == {200}
    assert before["generate_loaded_at"] is None


@pytest.mark.llm
def test_sighup_rebuilds_the_generate_backend_and_keeps_the_old_one_when_that_fails(tmp_path, port, grounding,
                                                                                     smollm2_path):
    from behaviorlab.datasets.parquet import write_event_log

    data = write_event_log(grounding, tmp_path / "log.parquet")
    weights = tmp_path / "model.gguf"  # the backend's file: replaced by a reload's, then gone
    weights.symlink_to(smollm2_path)
    settings = tmp_path / "run.toml"
    settings.write_text('[generate]\nn_users = 3\nlength = 4\nn_exemplars = 2\nn_neighbours = 4\nn_strata = 3\n'
                        f'max_attempts = 2\n[generate.llm]\nmodel = "{weights}"\nparallel = 1\nthreads = 1\n'
                        'context_per_slot = 1024\nuse_cache = false\n', encoding="utf-8")
    log = tmp_path / "access.jsonl"
    with serving(port, "--generate-data", str(data), "--generate-config", str(settings), "--access-log", str(log)) as (
            process, url):
        built = httpx.get(f"{url}/models").json()["generate_loaded_at"]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # sequences queued and in progress across the reload
            answers = [pool.submit(httpx.post, f"{url}/generate", json={"profile_index": i % 3}, timeout=600)
                       for i in range(4)]
            time.sleep(0.3)
            process.send_signal(signal.SIGHUP)
            wait_for(lambda: log_events(log, "reloaded"))
            statuses = [answer.result().status_code for answer in answers]
        rebuilt = httpx.get(f"{url}/models").json()["generate_loaded_at"]
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        reloaded_at = next(i for i, line in enumerate(lines) if line.get("event") == "reloaded" and line["part"] == "generate")
        generated = [i for i, line in enumerate(lines) if line.get("path") == "/generate"]

        weights.unlink()
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: log_events(log, "reload_failed"))
        after_failure = httpx.post(f"{url}/generate", json={"profile_index": 1}, timeout=600)
        kept = httpx.get(f"{url}/models").json()["generate_loaded_at"]
    assert statuses == [200] * 4  # none dropped by the reload
    assert generated[-1] > reloaded_at  # the reload finished while sequences were still being made
    assert rebuilt > built
    [failure] = log_events(log, "reload_failed")
    assert failure["part"] == "generate" and "model.gguf" in failure["error"]
    assert after_failure.status_code == 200 and len(after_failure.json()["events"]) == 4  # the old backend serves
    assert kept == rebuilt
