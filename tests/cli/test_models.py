"""`behaviorlab train / evaluate / predict` end to end on a small log written in the test."""

from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import behaviorlab.cli.models as models_cli
from behaviorlab import llm, sequences
from behaviorlab.cli import main
from behaviorlab.llm.base import Failure


@pytest.fixture
def log_csv(tmp_path):
    """A CSV log: 40 users walking a ring of 6 actions (a -> b -> c ...), one hour apart."""
    rng = np.random.default_rng(0)
    ring = ["wake", "coffee", "commute", "work", "dinner", "sleep"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
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
    assert capsys.readouterr().err.count("embeding_dim") == 1  # each problem once, not again after the headline
    assert not (tmp_path / "m").exists()
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), "--history", "wake teleport"]) == 6
    err = capsys.readouterr().err
    assert "teleport" in err and "Traceback" not in err
    assert main(["evaluate", str(tmp_path), "--data", str(log_csv)]) == 6
    assert "not a saved model" in capsys.readouterr().err
    for ks in ("0,5", "five"):
        assert main(["evaluate", str(tmp_path / "m"), "--data", str(log_csv), "--ks", ks]) == 2
        assert "For example --ks 1,5,10" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "m"), "--history", "wake", "--k", "0"]) == 2  # a usage error, like --ks
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "p"), "--split", "published"]) == 2


def test_unwritable_outputs_fail_before_any_training(log_csv, tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded although the output cannot be written")

    monkeypatch.setattr(models_cli, "_load_split", no_loading)
    (tmp_path / "a-folder").mkdir()
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m"),
                 "--json-out", str(tmp_path / "a-folder")]) == 8
    assert "is a directory" in capsys.readouterr().err
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", "/proc/behaviorlab-test/m"]) == 8
    assert "not writable" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_saved_model_follows_the_umask_and_a_checkpoint_folder_is_named_as_unfinished(log_csv, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755  # readable by the services that serve it
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / models_cli.CHECKPOINT_FILE).write_bytes(b"")
    capsys.readouterr()
    assert main(["predict", str(unfinished), "--history", "wake"]) == 6
    assert "--resume" in capsys.readouterr().err


def test_evaluate_refuses_another_split_and_predict_refuses_context_the_model_ignores(log_csv, tmp_path, capsys):
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m"), "--split", "temporal"]) == 0
    capsys.readouterr()
    # loo's test events lie inside the temporal split's train part: the scores would be inflated
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(log_csv), "--split", "loo"]) == 2
    assert "overlaps its training data" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "m"), "--data", str(log_csv), "--split", "temporal"]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "m"), "--history", "wake", "--context", "weekday=Mon"]) == 6
    assert "reads no context" in capsys.readouterr().err


def test_training_without_validation_examples_says_so_up_front(tmp_path, capsys):
    path = tmp_path / "short.csv"
    path.write_text("user_id,timestamp,action\nu1,2024-01-01T00:00:00Z,a\nu1,2024-01-01T01:00:00Z,b\n"
                    "u2,2024-01-01T00:00:00Z,b\nu2,2024-01-01T01:00:00Z,a\n")
    assert main(["train", "--model", "gru4rec", "--data", str(path), "--out", str(tmp_path / "m"), "--epochs", "2",
                 "--threads", "1"]) == 0
    assert "no validation examples (no early stopping: all 2 epochs run" in capsys.readouterr().err


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


def tiny_sasrec(tmp_path):
    """A config file for a sasrec that trains in a second; dropout stays on, so resuming must restore its RNG."""
    config = tmp_path / "tiny.toml"
    config.write_text("embedding_dim = 8\nmax_len = 4\nbatch_size = 16\nlearning_rate = 0.01\ndropout = 0.3\n")
    return config


def test_interrupted_train_resumes_with_the_metrics_of_an_uninterrupted_run(log_csv, tmp_path, monkeypatch, capsys):
    base = ["train", "--model", "sasrec", "--data", str(log_csv), "--config", str(tiny_sasrec(tmp_path)),
            "--epochs", "4", "--patience", "10", "--threads", "1"]
    straight = tmp_path / "straight.json"
    assert main([*base, "--out", str(tmp_path / "straight"), "--json-out", str(straight)]) == 0

    model_dir, resumed = tmp_path / "model", tmp_path / "resumed.json"
    run = [*base, "--out", str(model_dir), "--json-out", str(resumed)]
    real_bar = models_cli.training_progress

    @contextmanager
    def ctrl_c_after_epoch_2(title):
        def report(done, total, info=None):
            if done == 2 and "batch" not in (info or {}):  # the report of epoch 2, not one from inside epoch 3
                raise KeyboardInterrupt

        yield report

    monkeypatch.setattr(models_cli, "training_progress", ctrl_c_after_epoch_2)
    capsys.readouterr()
    assert main(run) == 130
    err = capsys.readouterr().err  # the path stays whole: messages are not hard-wrapped
    assert "--resume" in err and str(model_dir / "checkpoint.pt") in err
    assert (model_dir / "checkpoint.pt").is_file() and not (model_dir / "model.json").exists()
    monkeypatch.setattr(models_cli, "training_progress", real_bar)

    assert main(run) == 2  # an existing checkpoint is never silently overwritten or resumed
    err = " ".join(capsys.readouterr().err.split())
    assert "unfinished training run" in err and "--resume" in err
    assert main([*run, "--resume"]) == 0
    assert "Resuming" in capsys.readouterr().out
    assert not (model_dir / "checkpoint.pt").exists() and (model_dir / "model.json").is_file()
    assert json.loads(resumed.read_text())["valid"] == json.loads(straight.read_text())["valid"]
    state = json.loads((model_dir / "state.json").read_text())["training"]
    assert [e["epoch"] for e in state["epochs"]] == [1, 2, 3, 4]  # the record spans both sessions


def test_resume_needs_a_checkpoint_and_a_neural_model(log_csv, tmp_path, capsys):
    out = str(tmp_path / "m")
    assert main(["train", "--model", "sasrec", "--data", str(log_csv), "--out", out, "--resume"]) == 2
    assert "no checkpoint" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", out, "--resume"]) == 2
    assert "--resume does not apply to the markov model" in " ".join(capsys.readouterr().err.split())


def test_patience_and_time_budget_flags(log_csv, tmp_path, capsys):
    model_dir = tmp_path / "budget"
    assert main(["train", "--model", "gru4rec", "--data", str(log_csv), "--out", str(model_dir), "--config",
                 str(tiny_sasrec(tmp_path)), "--threads", "1", "--epochs", "5", "--patience", "2",
                 "--time-budget", "0.001"]) == 0
    config = json.loads((model_dir / "model.json").read_text())["config"]
    assert config["patience"] == 2 and config["max_train_seconds"] == 0.001
    training = json.loads((model_dir / "state.json").read_text())["training"]
    assert training["stopped_by_time"] and len(training["epochs"]) == 0  # the first batch crosses the budget
    assert "the time budget ran out inside epoch 1 (batch 1 of" in " ".join(capsys.readouterr().err.split())
    capsys.readouterr()
    for flags in (["--patience", "2"], ["--time-budget", "60"], ["--patience", "2", "--epochs", "3"]):
        assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(tmp_path / "m"), *flags]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "not apply to the markov model" in err and all(f in err for f in flags if f.startswith("--"))
    assert main(["train", "--model", "sasrec", "--data", str(log_csv), "--out", str(tmp_path / "m"),
                 "--time-budget", "0"]) == 2  # the config's own validation: a budget must be positive
    assert "max_train_seconds" in capsys.readouterr().err


def zero_shot_model(log_csv, tmp_path) -> str:
    """`behaviorlab train` a zero-shot model: it keeps the vocabulary, and its validation metrics ask the LLM."""
    config = tmp_path / "zero_shot.toml"
    config.write_text("top_k = 3\nmax_tokens = 96\n")
    model_dir = tmp_path / "zero-shot"
    assert main(["train", "--model", "zero-shot-llm", "--data", str(log_csv), "--out", str(model_dir),
                 "--config", str(config)]) == 0
    return str(model_dir)


def test_evaluate_shows_how_many_zero_shot_predictions_failed(log_csv, tmp_path, monkeypatch, fake, capsys):
    # Every 4th answer fails (a timeout), every 4th after that is not JSON; the rest name three actions.
    def answer(request, n):
        if n % 4 == 0:
            return Failure("timeout", "slow", attempts=3)
        return "{oops" if n % 4 == 1 else json.dumps({"next": ["commute", "work", "dinner"]})

    monkeypatch.setattr(llm, "create_backend", lambda config, notify=None: fake(answer))  # a new one per model
    model_dir = zero_shot_model(log_csv, tmp_path)
    result = tmp_path / "test.json"
    capsys.readouterr()
    assert main(["evaluate", model_dir, "--data", str(log_csv), "--json-out", str(result)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long titles
    report = json.loads(result.read_text())
    assert report["test"]["examples"] == 40
    assert report["failures"] == {"requests": 40, "failures": 20, "timeout": 10, "invalid_output": 10}
    assert "failed test predictions" in out
    for row in ("requests │ 40", "failures │ 20 │ 50.0%", "timeout │ 10 │ 25.0%", "invalid_output │ 10 │ 25.0%"):
        assert row in out


def test_evaluate_of_a_model_that_cannot_fail_has_no_failure_counts(log_csv, tmp_path, capsys):
    model_dir = tmp_path / "markov"
    assert main(["train", "--model", "markov", "--data", str(log_csv), "--out", str(model_dir)]) == 0
    result = tmp_path / "test.json"
    assert main(["evaluate", str(model_dir), "--data", str(log_csv), "--json-out", str(result)]) == 0
    assert "failures" not in json.loads(result.read_text()) and "failed" not in capsys.readouterr().out


@pytest.mark.llm
def test_evaluate_counts_the_real_small_models_zero_shot_answers(tmp_path, monkeypatch, smollm2_backend, capsys):
    """smollm2-135m answers every test example of a small log; the counts cover each of them."""
    lines = ["user_id,timestamp,action"]
    ring = ["wake", "coffee", "commute", "work", "dinner", "sleep"]
    for u in range(6):
        lines += [f"u{u},2024-01-01T{t:02d}:00:00Z,{ring[(u + t) % 6]}" for t in range(6)]
    data = tmp_path / "small.csv"
    data.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(llm, "create_backend", lambda config, notify=None: smollm2_backend)  # the session's loaded model
    model_dir = zero_shot_model(data, tmp_path)
    result = tmp_path / "test.json"
    assert main(["evaluate", model_dir, "--data", str(data), "--json-out", str(result)]) == 0
    failures = json.loads(result.read_text())["failures"]
    assert failures["requests"] == 6 and failures["failures"] == sum(v for k, v in failures.items()
                                                                     if k not in ("requests", "failures"))
    assert "failed test predictions" in " ".join(capsys.readouterr().out.split())


def test_evaluate_and_predict_name_a_saved_model_that_predicts_no_next_action(log_csv, tmp_path, capsys):
    out = tmp_path / "gaps"
    assert main(["timing", "gaps", "--data", str(log_csv), "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["predict", str(out), "--history", "wake"]) != 0
    assert "holds a 'time-to-next' model, which does not predict next actions" in " ".join(capsys.readouterr().err.split())
    assert main(["evaluate", str(out), "--data", str(log_csv)]) != 0
    assert "does not predict next actions" in " ".join(capsys.readouterr().err.split())
