"""`behaviorlab serve` as a process: SIGHUP swaps in the re-saved models while requests keep being answered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

import behaviorlab


def test_sighup_reloads_the_models_without_dropping_requests(tmp_path, ring_log, port):
    from behaviorlab.models.registry import create_model

    model_dir = tmp_path / "m"
    create_model("popularity").fit(ring_log(20, 6)).save(model_dir)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(behaviorlab.__file__)))
    process = subprocess.Popen([sys.executable, "-m", "behaviorlab", "serve", "--model", f"m={model_dir}", "--port", str(port)],
                               env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
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
        while (after := httpx.get(f"{url}/models").json())["loaded_at"] == before["loaded_at"]:
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        worker.join()
        assert before["models"][0]["kind"] == "popularity" and after["models"][0]["kind"] == "markov"
        assert len(statuses) > 5 and set(statuses) == {200}
        assert process.poll() is None  # SIGHUP did not end the process
    finally:
        process.terminate()
        process.wait(timeout=30)
