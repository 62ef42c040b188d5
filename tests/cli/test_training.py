"""Every torch model's training resumes after kill -9 (between epochs or inside one), and a budget-stopped run
extends, to the weights of an uninterrupted run; the training flags are the same for every command that trains
one, and a long epoch reports its progress."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import typer
from typer.testing import CliRunner

import behaviorlab
from behaviorlab.cli import main
from behaviorlab.cli.training import TrainingFlags, with_training_flags
from behaviorlab.datasets import write_event_log
from behaviorlab.models.settings import TrainSettings
from behaviorlab.schema import EventLog, Schema

SOURCES = Path(behaviorlab.__file__).parent.parent
# Many short epochs, patience that never stops them: the kill lands after the first checkpoint, well before the end.
LOOP = ["--epochs", "60", "--patience", "1000", "--threads", "1", "--device", "cpu"]


@pytest.fixture
def data(tmp_path, make_home_log):
    """The logs each kind trains on: a ring of actions with hourly timestamps, and a smart-home log with a split."""
    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", start + timedelta(minutes=int(t * 60 + rng.integers(50))), f"a{(u + t) % 6}")
            for u in range(30) for t in range(10)]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "action": pl.String},
                         orient="row")
    timed = write_event_log(EventLog(frame, Schema(name="ring")), tmp_path / "ring.parquet")
    home = write_event_log(make_home_log(n_train=60, n_valid=20, n_test=20), tmp_path / "home.parquet")
    days = [(f"u{u}", start + timedelta(days=d, hours=int(h)), "a0")
            for u in range(6) for d in range(40) for h in rng.integers(8, 22, size=int(rng.integers(0, 4)))]
    daily = write_event_log(EventLog(pl.DataFrame(days, schema=frame.schema, orient="row"), Schema(name="days")),
                            tmp_path / "days.parquet")
    config = tmp_path / "tiny.toml"
    config.write_text("embedding_dim = 8\nmax_len = 6\nbatch_size = 16\ndropout = 0.3\n")
    daily_config = tmp_path / "daily.toml"
    daily_config.write_text("arima_orders = [[1, 0, 0]]\nmin_events = 5\nbatch_size = 16\n")
    return {"timed": timed, "home": home, "config": config, "daily": daily, "daily config": daily_config}


def command(kind: str, data: dict[str, Path], out: Path) -> list[str]:
    if kind in ("gru4rec", "lstm", "sasrec"):
        return ["train", "--model", kind, "--data", str(data["timed"]), "--config", str(data["config"]), "--out", str(out)]
    if kind == "ctr":
        return ["ctr", "train", "--data", str(data["timed"]), "--out", str(out)]
    if kind == "daily-counts":
        return ["timing", "daily", "--data", str(data["daily"]), "--config", str(data["daily config"]), "--out", str(out)]
    if kind == "time-to-next":
        return ["timing", "gaps", "--data", str(data["timed"]), "--out", str(out)]
    return ["timing", "hour-bin", "--data", str(data["home"]), "--out", str(out)]


def saved_weights(kind: str, folder: Path) -> dict[str, np.ndarray]:
    name = "ctr.pt" if kind == "ctr" else "weights.pt"
    state = torch.load(folder / name, map_location="cpu", weights_only=True)
    state = state["network"] if kind == "ctr" else state
    return {key: tensor.numpy() for key, tensor in state.items()}


def kill_after_first_checkpoint(args: list[str], out: Path) -> None:
    """Run the command in a subprocess and SIGKILL it as soon as its first checkpoint exists."""
    process = subprocess.Popen([sys.executable, "-m", "behaviorlab", *args], env=os.environ | {"PYTHONPATH": str(SOURCES)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").exists():
        assert process.poll() is None, f"the run ended before its first checkpoint: {process.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "model.json").exists() and not (out / "config.json").exists()  # it did not finish


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gru4rec", "lstm", "sasrec", "ctr", "time-to-next", "next-hour-bin", "daily-counts"])
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(kind, data, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main([*command(kind, data, straight), *LOOP]) == 0
    kill_after_first_checkpoint([*command(kind, data, killed), *LOOP], killed)
    assert main([*command(kind, data, killed), *LOOP]) == 2  # an unfinished run is never restarted silently
    assert main([*command(kind, data, killed), *LOOP, "--resume"]) == 0
    expected = saved_weights(kind, straight)
    resumed = saved_weights(kind, killed)
    assert resumed.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)
    assert not (killed / "checkpoint.pt").exists()


@pytest.fixture
def long_epochs(tmp_path):
    """A ring log of 150 users x 30 events and a config of one window per batch: ~1,300 batches an epoch (seconds
    on the test machine), saved every 0.2 s, so a kill after the first checkpoint lands inside epoch 1."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", start + timedelta(hours=t), f"a{(u + t) % 6}") for u in range(150) for t in range(30)]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "action": pl.String},
                         orient="row")
    log = write_event_log(EventLog(frame, Schema(name="ring")), tmp_path / "long.parquet")
    config = tmp_path / "long.toml"
    config.write_text("embedding_dim = 8\nmax_len = 6\nbatch_size = 1\ndropout = 0.3\ncheckpoint_seconds = 0.2\n")
    return lambda out: ["train", "--model", "gru4rec", "--data", str(log), "--config", str(config), "--out", str(out),
                        "--epochs", "2", "--patience", "1000", "--threads", "1", "--device", "cpu"]


def checkpoint_state(out: Path) -> dict:
    return torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["state"]


@pytest.mark.slow
def test_a_run_killed_inside_an_epoch_resumes_at_its_next_batch(long_epochs, tmp_path, capsys):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(long_epochs(straight)) == 0
    assert "epoch 1: batch 1/" in capsys.readouterr().out  # the first batch is reported, not only the epochs
    kill_after_first_checkpoint(long_epochs(killed), killed)
    state = checkpoint_state(killed)
    assert state["record"]["epochs"] == [] and state["position"]["batches"] > 0  # killed inside epoch 1
    assert main([*long_epochs(killed), "--resume"]) == 0
    for key, value in saved_weights("gru4rec", straight).items():
        np.testing.assert_array_equal(saved_weights("gru4rec", killed)[key], value, err_msg=key)


@pytest.mark.parametrize("kind", ["gru4rec", "time-to-next"])
def test_a_run_stopped_by_its_time_budget_extends_with_resume(kind, data, tmp_path):
    loop = ["--epochs", "4", "--patience", "1000", "--threads", "1", "--device", "cpu"]
    straight, budget = tmp_path / "straight", tmp_path / "budget"
    assert main([*command(kind, data, straight), *loop]) == 0
    assert main([*command(kind, data, budget), *loop, "--time-budget", "0.0001"]) == 0  # stops after its first batch
    assert (budget / "checkpoint.pt").is_file()  # kept beside the saved model, to be extended
    assert checkpoint_state(budget)["position"]["batches"] == 1  # inside epoch 1
    assert main([*command(kind, data, budget), *loop, "--time-budget", "3600", "--resume"]) == 0
    for key, value in saved_weights(kind, straight).items():
        np.testing.assert_array_equal(saved_weights(kind, budget)[key], value, err_msg=key)
    assert not (budget / "checkpoint.pt").exists()


def test_training_progress_prints_the_epochs_and_a_long_epoch_every_so_often(capsys, monkeypatch):
    from behaviorlab.cli import training as training_cli

    def inside(batch: int) -> dict:
        return {"epoch": 1, "batch": batch, "batches": 400, "examples_per_s": 1234.4, "eta_seconds": 245.0}

    with training_cli.training_progress("training x") as report:
        report(0, 2, {"epoch": 1, "batch": 0, "batches": 400, "rows": 51_200})  # the first batch starts
        report(0, 2, inside(1))
        report(0, 2, inside(2))  # within IN_EPOCH_LINE_SECONDS of the first: no line
        report(1, 2, {"epoch": 1, "loss": 0.5})
    monkeypatch.setattr(training_cli, "IN_EPOCH_LINE_SECONDS", 0.0)
    with training_cli.training_progress("training x") as report:
        report(1, 2, inside(3) | {"epoch": 2, "eta_seconds": 7600.0})
        report(1, 2, inside(4) | {"epoch": 2, "eta_seconds": 12.4})
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "epoch 1: 400 batches over 51,200 rows; batch 1 running (it times the epoch)" in lines
    assert "epoch 1: batch 1/400  1,234 examples/s  ETA 4m05s" in lines and not any("batch 2/" in x for x in lines)
    assert "epoch 1  loss 0.5000" in lines
    assert "epoch 2: batch 3/400  1,234 examples/s  ETA 2h06m" in lines
    assert "epoch 2: batch 4/400  1,234 examples/s  ETA 12s" in lines


def test_train_says_when_few_validation_examples_chose_the_epoch(data, tmp_path, capsys):
    args = [*command("gru4rec", data, tmp_path / "model"), "--epochs", "2", "--threads", "1", "--device", "cpu"]
    assert main(args) == 0
    assert "warning: only 30 validation examples chose epoch" in " ".join(capsys.readouterr().err.split())


def test_train_reads_the_model_against_markov_and_says_why_it_falls_short(data, tmp_path, capsys):
    """One epoch on a ring that Markov predicts exactly: train prints its first lines before the data and the first
    batch, then the baseline and the warning with its cause; markov_baseline = false in the config skips both."""
    args = [*command("gru4rec", data, tmp_path / "model"), "--epochs", "1", "--threads", "1", "--device", "cpu"]
    assert main(args) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("Reading ") and "(read and split in " in lines[1]  # said before the slow parts
    assert any(re.match(r"epoch 1: \d+ batches over \d+ rows; batch 1 running", line) for line in lines)
    assert "Markov baseline on the same validation examples: NDCG@10 1.0000" in captured.out
    err = " ".join(captured.err.split())
    assert "warning: gru4rec's validation NDCG@10" in err and "is below the Markov model's (1.0000)" in err
    assert "its epoch cap (1) ended it at epoch 1" in err

    config = tmp_path / "no-baseline.toml"
    config.write_text(data["config"].read_text() + "markov_baseline = false\n")
    args[args.index(str(data["config"]))] = str(config)
    args[args.index(str(tmp_path / "model"))] = str(tmp_path / "plain")
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Markov baseline" not in captured.out and "Markov" not in captured.err


def test_training_flags_apply_to_every_torch_model_and_to_no_other(data, tmp_path, capsys):
    hour_bin = ["timing", "hour-bin", "--data", str(data["home"]), "--epochs", "2", "--patience", "1"]
    assert main([*hour_bin, "--device", "gpu"]) == 2  # the config's own validation
    assert "device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main([*hour_bin, "--device", "cuda"]) != 0  # the flag reaches the training loop
        assert "no CUDA device" in capsys.readouterr().err
    assert main(["timing", "gaps", "--data", str(data["timed"]), "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["train", "--model", "popularity", "--data", str(data["timed"]), "--out", str(tmp_path / "p"),
                 "--device", "cpu"]) == 2
    assert "--device does not apply to the popularity model" in " ".join(capsys.readouterr().err.split())


def test_every_training_command_takes_the_one_declaration_of_the_flags() -> None:
    import inspect
    from dataclasses import fields

    from behaviorlab.cli.models import train
    from behaviorlab.cli.tasks import ctr_train, timing_daily, timing_gaps, timing_hour_bin
    flags = [f.name for f in fields(TrainingFlags)]
    for command in (train, ctr_train, timing_gaps, timing_hour_bin, timing_daily):
        parameters = list(inspect.signature(command).parameters)
        assert parameters[-len(flags):] == flags and "training" not in parameters, command.__name__
        # the command's own source declares none of them: they come from TrainingFlags alone
        own = inspect.signature(inspect.unwrap(command)).parameters
        assert not set(flags) & set(own), command.__name__


def test_the_flags_reach_the_command_as_one_record() -> None:
    seen: list[TrainingFlags] = []  # the command's annotations are read in this module, as in cli/*.py
    app = typer.Typer()

    @app.command()
    @with_training_flags
    def fit(name: str, *, training: TrainingFlags) -> None:
        seen.append(training)

    result = CliRunner().invoke(app, ["x", "--epochs", "3", "--time-budget", "9.5", "--resume"])
    assert result.exit_code == 0, result.output
    assert seen == [TrainingFlags(epochs=3, time_budget=9.5, resume=True)]
    assert seen[0].overrides(TrainSettings, "sasrec") == {"epochs": 3, "max_train_seconds": 9.5}
