"""One writer per output: a second generate / train / experiment on the same --out is refused at once,
naming the PID that holds it, and nothing is sent or written; once the holder dies (kill -9) the same
command runs."""

import os
import signal

from behaviorlab.cli import main
from behaviorlab.datasets import write_event_log
from behaviorlab.llm.base import register_backend


def _refused(capsys, pid: int) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert f"Another behaviorlab process (PID {pid}) is writing" in first, err
    return err


def test_a_second_generate_on_one_run_folder_is_refused_before_any_request(tmp_path, tiny_log, fake, lock_holder, capsys,
                                                                           monkeypatch):
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "cache"))
    backends = []
    register_backend("fake-for-lock-test")(lambda config, notify=None: backends.append(fake()) or backends[-1])
    data = tmp_path / "tiny.parquet"
    write_event_log(tiny_log, data)
    run = tmp_path / "run"
    args = ["generate", "--data", str(data), "--out", str(run), "--n-users", "3", "--length", "4",
            "--backend", "fake-for-lock-test"]
    pid = lock_holder(run)
    assert main(args) == 8
    _refused(capsys, pid)
    assert backends == [] and not run.exists()  # refused before the model loaded: no request, no store
    os.kill(pid, signal.SIGKILL)  # the holder dies without cleaning up; its lock goes with it
    os.waitpid(pid, 0)
    assert main(args) == 0 and (run / "manifest.json").is_file()


def test_a_second_train_or_experiment_on_one_output_is_refused(tmp_path, tiny_run, lock_holder, capsys):
    model_dir = tmp_path / "model"
    pid = lock_holder(model_dir)
    assert main(["train", "--model", "popularity", "--data", str(tiny_run.real), "--out", str(model_dir)]) == 8
    _refused(capsys, pid)
    assert not model_dir.exists()

    results = tmp_path / "experiment.json"
    pid = lock_holder(results)
    assert main(["experiment", "--real", str(tiny_run.real), "--out", str(results), "--model", "markov",
                 "--seeds", "0", "--fractions", "1"]) == 8
    _refused(capsys, pid)
    assert not results.exists()
