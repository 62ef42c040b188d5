"""Same seed, same output, at the default settings: two uninterrupted `generate` runs and one killed with
SIGKILL and resumed write byte-identical synthetic data, with the real embedded test model.

Only the model, the number of users and the completions cache differ from the defaults: the cache is off,
because a cache hit would make a repeat identical whatever the model does; here every request is decoded.
"""

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from behaviorlab.datasets import write_event_log
from behaviorlab.generate.manifest import MANIFEST_FILE
from behaviorlab.generate.run import PARQUET_FILE, STORE_FILE

pytestmark = [pytest.mark.llm, pytest.mark.slow]
N_USERS = 12  # a batch (8 by default) and a part of one, so a kill can fall between two batches


def _generate(tmp_path: Path, data: Path, out: Path, per_profile: int) -> subprocess.Popen:
    config = tmp_path / f"{out.name}.toml"
    config.write_text(f'data = "{data}"\nout = "{out}"\n[generate]\nn_users = {N_USERS}\nseed = 0\n'
                      f'sequences_per_profile = {per_profile}\n'
                      '[generate.llm]\nmodel = "smollm2-135m"\nuse_cache = false\n')
    code = "import sys; from behaviorlab.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "generate", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | {"COLUMNS": "120"})


def _finished(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=900)
    assert process.returncode == 0, err.decode()


def _committed_attempts(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0


def _digest(run: Path) -> str:
    return hashlib.sha256((run / PARQUET_FILE).read_bytes()).hexdigest()


def _completions(run: Path) -> list[tuple]:
    with sqlite3.connect(run / STORE_FILE) as db:
        return db.execute("SELECT idx, slot, attempt, seed, completion FROM attempts ORDER BY idx, slot, attempt").fetchall()


# 3: a profile's later prompts reuse the first one's computed prefix; the reuse must be the same on resume
@pytest.mark.parametrize("per_profile", [1, 3])
def test_two_default_runs_and_a_killed_then_resumed_run_are_byte_identical(tmp_path, tiny_log, smollm2_path, per_profile):
    data = tmp_path / "real.parquet"
    write_event_log(tiny_log, data)
    first, second, resumed = tmp_path / "first", tmp_path / "second", tmp_path / "resumed"
    _finished(_generate(tmp_path, data, first, per_profile))
    _finished(_generate(tmp_path, data, second, per_profile))

    killed = _generate(tmp_path, data, resumed, per_profile)
    deadline = time.monotonic() + 600
    while _committed_attempts(resumed / STORE_FILE) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # kill -9 as soon as the first batch is committed, before the run finishes
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    before = _committed_attempts(resumed / STORE_FILE)
    assert 0 < before < N_USERS and not (resumed / MANIFEST_FILE).exists()  # it died mid-run
    _finished(_generate(tmp_path, data, resumed, per_profile))

    assert _completions(first) == _completions(second) == _completions(resumed)
    assert _digest(first) == _digest(second) == _digest(resumed)
