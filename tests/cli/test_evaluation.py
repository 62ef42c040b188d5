"""`behaviorlab evaluate-synthetic`, `experiment` and `report` end to end on a tiny run on disk."""

from __future__ import annotations

import json

from behaviorlab.cli import main
from behaviorlab.evaluate.synthetic import SyntheticEvaluation


def test_evaluate_experiment_report(tiny_run, capsys) -> None:
    run, real = tiny_run.run, tiny_run.real
    assert main(["evaluate-synthetic", str(run), "--real", str(real)]) == 0
    evaluation = SyntheticEvaluation.from_json((run / "evaluation.json").read_text())
    assert {r.name for r in evaluation.fidelity} >= {"action_jsd", "hour_bin_jsd", "discriminator_auc"}
    assert evaluation.profile_consistency is not None and evaluation.inputs["real"].endswith("real")
    assert all(row.baseline is not None for row in evaluation.fidelity)  # the Markov baseline column

    out = run / "experiment.json"
    args = ["experiment", "--real", str(real), "--synthetic", str(run), "--out", str(out), "--model", "markov",
            "--fractions", "0.5,1", "--seeds", "0,1", "--scenarios", "real_only,pretrain_augment"]
    assert main(args) == 0
    payload = json.loads(out.read_text())
    assert len(payload["cells"]) == 2 * 2 * 3
    assert main(args) == 0  # resumes: every cell is already there
    assert json.loads(out.read_text())["cells"] == payload["cells"]

    shift = run / "experiment-shift.json"
    assert main(["experiment", "--real", str(real), "--out", str(shift), "--model", "markov", "--fractions", "1",
                 "--seeds", "0", "--shift"]) == 0
    assert "Environment shift: train" in capsys.readouterr().out

    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert html.count("data:image/png") == 5 and "Environment shift" in html


def test_bad_inputs_give_messages_not_tracebacks(tiny_run, tmp_path, capsys) -> None:
    assert main(["evaluate-synthetic", str(tmp_path / "missing"), "--real", str(tiny_run.real)]) == 3
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["report", str(empty)]) == 3
    assert "Parquet" in capsys.readouterr().err
    assert main(["experiment", "--real", str(tiny_run.real), "--out", str(tmp_path / "x.json"),
                 "--fractions", "a,b"]) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"digest": "different", "cells": []}))
    assert main(["experiment", "--real", str(tiny_run.real), "--out", str(other), "--model", "markov",
                 "--seeds", "0", "--fractions", "1"]) == 7
    assert "different experiment" in capsys.readouterr().err


def test_json_out_names_the_evaluation_file_like_other_commands(tiny_run, tmp_path) -> None:
    target = tmp_path / "elsewhere.json"
    assert main(["evaluate-synthetic", str(tiny_run.run), "--real", str(tiny_run.real), "--json-out", str(target)]) == 0
    assert SyntheticEvaluation.from_json(target.read_text()).fidelity
