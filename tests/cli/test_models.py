"""`behaviorlab train / evaluate / predict` end to end on a small log written in the test."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import behaviorlab.sequences as sequences
from behaviorlab.cli import main


@pytest.fixture
def log_csv(tmp_path):
    """A CSV log: 40 users walking a ring of 6 actions (a -> b -> c ...), one hour apart."""
    rng = np.random.default_rng(0)
    ring = ["wake", "coffee", "commute", "work", "dinner", "sleep"]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    lines = ["user_id,timestamp,action"]
    for u in range(40):
        position = int(rng.integers(6))
        for t in range(12):
            lines.append(f"u{u},{(start + timedelta(hours=t)).isoformat()},{ring[(position + t) % 6]}")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_evaluate_predict_markov(log_csv, tmp_path, capsys):
    model_dir = tmp_path / "markov"
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(model_dir)]) == 0
    assert "validation" in capsys.readouterr().out
    result = tmp_path / "test.json"
    assert main(["evaluate", str(model_dir), "--data", str(log_csv), "--json-out", str(result)]) == 0
    out = capsys.readouterr().out
    report = json.loads(result.read_text())
    assert report["split"] == "loo" and report["ranking"] == "full ranking"
    assert report["test"]["HR@1"] == 1.0 and report["test"]["examples"] == 40  # the ring is deterministic
    assert "HR@10" in out
    assert main(["predict", str(model_dir), "--history", "wake coffee", "--k", "3", "--explain", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["predictions"][0]["action"] == "commute"
    assert payload["explanation"]["method"] == "transition counts"
    assert {c["action"] for c in payload["explanation"]["contributions"]} == {"wake", "coffee"}


def test_train_sasrec_with_config_file_and_explain_table(log_csv, tmp_path, capsys):
    config = tmp_path / "sasrec.toml"
    config.write_text("embedding_dim = 8\nmax_len = 4\nbatch_size = 16\nlearning_rate = 0.01\n")
    model_dir = tmp_path / "sasrec"
    assert main(["train", "--model", "sasrec", "--data", str(log_csv), "--out", str(model_dir), "--config", str(config),
                 "--epochs", "3", "--threads", "1", "--seed", "1"]) == 0
    saved = json.loads((model_dir / "model.json").read_text())
    assert saved["config"]["embedding_dim"] == 8 and saved["config"]["seed"] == 1 and saved["metadata"]["split"] == "loo"
    capsys.readouterr()
    assert main(["predict", str(model_dir), "--history", "work dinner", "--explain"]) == 0
    out = capsys.readouterr().out
    assert "attention" in out and "dinner" in out


def test_training_never_reads_the_test_split(log_csv, tmp_path, monkeypatch):
    class TestSplitSpy:
        """Stands in for the test examples: any use during training fails the command."""

        def __getattr__(self, name):
            raise AssertionError(f"the test split was read during training ({name})")

        def __len__(self):
            raise AssertionError("the test split was read during training (len)")

    real = sequences.leave_one_out

    def spied(log, *args, **kwargs):
        split = real(log, *args, **kwargs)
        return sequences.SequenceSplit(split.train, split.valid, TestSplitSpy())

    monkeypatch.setattr(sequences, "leave_one_out", spied)
    for model in ("markov", "gru4rec"):
        assert main(["train", "--model", model, "--data", str(log_csv), "--out", str(tmp_path / model),
                     "--epochs", "1", "--threads", "1"] if model == "gru4rec" else
                    ["train", "--model", model, "--data", str(log_csv), "--out", str(tmp_path / model)]) == 0


def test_errors_are_messages_with_exit_codes(log_csv, tmp_path, capsys):
    assert main(["train", "--model", "nope", "--data", str(log_csv), "--out", str(tmp_path / "m")]) == 6
    assert "Unknown model" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("embeding_dim = 8\n")
    assert main(["train", "--model", "sasrec", "--data", str(log_csv), "--out", str(tmp_path / "m"), "--config", str(bad)]) == 2
    assert "embeding_dim" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), "--history", "wake teleport"]) == 6
    err = capsys.readouterr().err
    assert "teleport" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path), "--data", str(log_csv)]) == 6
    assert "not a saved model" in " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "p"), "--split", "published"]) == 2


def test_smartthings_folder_trains_on_its_published_split_by_default(tmp_path, capsys):
    """A SmartThings-format folder (train/valid/test.csv): the published split is the default."""
    folder = tmp_path / "smartthings"
    folder.mkdir()
    cycle = ["Light:switch on", "Television:switch on", "Television:switch off", "Light:switch off"]
    header = "sequence_id,position,weekday,hour_bin,device,device_control"
    for part, n in (("train", 30), ("valid", 6), ("test", 6)):
        rows = [header]
        for s in range(n):
            for p in range(10):
                action = cycle[(s + p) % 4]
                rows.append(f"{s},{p},Mon,(18~21),{action.split(':')[0]},{action}")
        (folder / f"{part}.csv").write_text("\n".join(rows) + "\n")
    model_dir = tmp_path / "model"
    assert main(["train", "--model", "lstm", "--data", str(folder), "--out", str(model_dir), "--epochs", "2", "--threads", "1"]) == 0
    assert json.loads((model_dir / "model.json").read_text())["metadata"]["split"] == "published"
    result = tmp_path / "test.json"
    assert main(["evaluate", str(model_dir), "--data", str(folder), "--json-out", str(result)]) == 0
    assert json.loads(result.read_text())["test"]["examples"] == 6
    capsys.readouterr()
    assert main(["predict", str(model_dir), "--history", "Light:switch on|Television:switch on", "--sep", "|", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 4
    assert main(["predict", str(model_dir), "--history", "Light:switch on"]) == 6  # spaces need --sep
    assert "--sep" in " ".join(capsys.readouterr().err.split())
