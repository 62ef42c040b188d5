"""`behaviorlab ctr|timing|anomaly ...` end to end on tiny logs written by the test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from behaviorlab.cli import main
from behaviorlab.datasets import write_event_log
from behaviorlab.schema import EventLog, Schema


@pytest.fixture
def home_data(tmp_path, make_home_log):
    return write_event_log(make_home_log(n_train=150, n_valid=60, n_test=60), tmp_path / "home.parquet")


def timed_data(path, n_users: int = 6, days: int = 60, seed: int = 0):
    """Users with a busy-weekend rhythm; the gap after each action depends on the action."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    users, stamps, actions = [], [], []
    for u in range(n_users):
        for d in range(days):
            clock = start + timedelta(days=d, hours=8)
            for i in range(int(rng.poisson(6 if d % 7 >= 5 else 2))):
                action = "short" if i % 2 else "long"
                users.append(f"u{u}")
                stamps.append(clock)
                actions.append(action)
                clock += timedelta(minutes=5 if action == "short" else 90)
    frame = pl.DataFrame({"user_id": users, "timestamp": stamps, "action": actions})
    log = EventLog(frame.with_columns(pl.col("timestamp").dt.cast_time_unit("us")), Schema(name="timed"))
    return write_event_log(log, path)


def test_anomaly_train_then_evaluate(home_data, tmp_path, capsys):
    detector = tmp_path / "detector"
    assert main(["anomaly", "train", "--data", str(home_data), "--out", str(detector)]) == 0
    assert (detector / "detector.json").is_file() and (detector / "model" / "model.json").is_file()
    report_path = tmp_path / "anomaly.json"
    assert main(["anomaly", "evaluate", str(detector), "--data", str(home_data), "--json-out", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "impossible_pair" in out and "overall" in out
    report = json.loads(report_path.read_text())
    assert report["model"] == "markov"
    assert {k["kind"] for k in report["test"]["per_kind"]} == {"unusual_time", "unusual_device", "flood", "impossible_pair"}
    assert report["test"]["overall"]["f1"] > 0.6


def test_anomaly_needs_a_published_split(tmp_path, capsys):
    data = timed_data(tmp_path / "timed.parquet", n_users=2, days=10)
    assert main(["anomaly", "train", "--data", str(data), "--out", str(tmp_path / "d")]) == 3
    err = capsys.readouterr().err
    assert "no 'split' column" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_anomaly_rejects_unknown_config_keys(home_data, tmp_path, capsys):
    config = tmp_path / "anomaly.toml"
    config.write_text('aggregate = "max"\nthreshhold_rule = "f1"\n')
    assert main(["anomaly", "train", "--data", str(home_data), "--out", str(tmp_path / "d"), "--config", str(config)]) == 2
    assert "threshhold_rule" in capsys.readouterr().err


def test_ctr_train_then_evaluate(tmp_path, make_log, capsys):
    data = write_event_log(make_log(n_users=30, length=6), tmp_path / "items.parquet")
    model = tmp_path / "ctr"
    assert main(["ctr", "train", "--data", str(data), "--out", str(model), "--epochs", "2", "--head", "mlp"]) == 0
    result = tmp_path / "ctr.json"
    assert main(["ctr", "evaluate", str(model), "--data", str(data), "--negatives", "5", "--json-out", str(result)]) == 0
    test = json.loads(result.read_text())["test"]
    assert 0.0 <= test["AUC (5 sampled negatives)"] <= 1.0 and test["examples"] == 30.0
    assert "HR@10" in capsys.readouterr().out


def test_timing_gaps_and_daily(tmp_path, capsys):
    data = timed_data(tmp_path / "timed.parquet")
    gaps = tmp_path / "gaps.json"
    assert main(["timing", "gaps", "--data", str(data), "--epochs", "5", "--out", str(tmp_path / "gap-model"),
                 "--json-out", str(gaps)]) == 0
    rows = json.loads(gaps.read_text())["test"]
    assert set(rows) == {"neural (MLP, L1 on log-seconds)", "global mean", "global median", "user median"}
    assert (tmp_path / "gap-model" / "weights.pt").is_file()
    config = tmp_path / "daily.toml"
    config.write_text("arima_orders = [[1, 0, 0]]\nmin_events = 5\n")
    daily = tmp_path / "daily.json"
    assert main(["timing", "daily", "--data", str(data), "--config", str(config), "--epochs", "5",
                 "--json-out", str(daily)]) == 0
    report = json.loads(daily.read_text())
    assert report["users"] == 6 and report["arima_order"] == [1, 0, 0] and "neural (MLP, Poisson)" in report["metrics"]
    assert "same weekday last week" in capsys.readouterr().out


def test_timing_hour_bin(home_data, tmp_path, capsys):
    result = tmp_path / "bins.json"
    assert main(["timing", "hour-bin", "--data", str(home_data), "--epochs", "5", "--json-out", str(result)]) == 0
    payload = json.loads(result.read_text())
    assert payload["rows"]["test"] == 60 and "previous event's bin" in payload["test"]


def test_timing_gaps_on_a_position_log_is_a_clear_error(home_data, capsys):
    assert main(["timing", "gaps", "--data", str(home_data)]) == 3
    assert "timestamps" in capsys.readouterr().err
