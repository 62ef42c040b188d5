"""`behaviorlab evaluate-synthetic`, `experiment` and `report` end to end on a tiny run on disk."""

from __future__ import annotations

import json
import shutil

import pytest

from behaviorlab.cli import main
from behaviorlab.cli.generate import GenerateJob, training_log
from behaviorlab.evaluate.synthetic import SyntheticEvaluation


def _run_grounded_on(template, subset, folder):
    """A copy of the tiny run whose manifest records `subset` as its grounding, as `generate --data SUBSET`
    writes it (generate/run.py records the digest of what `training_log` loads)."""
    job = GenerateJob(data=subset, out=folder)
    shutil.copytree(template, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["data"]["grounding_digest"] = training_log(job).digest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_evaluate_experiment_report(tiny_run, tmp_path, capsys) -> None:
    run, real = tiny_run.run, tiny_run.real
    assert main(["evaluate-synthetic", str(run), "--real", str(real)]) == 0
    evaluation = SyntheticEvaluation.from_json((run / "evaluation.json").read_text())
    assert {r.name for r in evaluation.fidelity} >= {"action_jsd", "hour_bin_jsd", "discriminator_auc"}
    assert evaluation.profile_consistency is not None and evaluation.inputs["real"].endswith("real")
    assert all(row.baseline is not None for row in evaluation.fidelity)  # the Markov baseline column

    out = run / "experiment.json"
    grid = ["--real", str(real), "--model", "markov", "--fractions", "0.5,1", "--seeds", "0,1"]
    args = ["experiment", *grid, "--synthetic", str(run), "--out", str(out), "--scenarios", "real_only,pretrain_augment"]
    # the tiny run records no grounding subset, and one run cannot serve the 50% cells anyway
    assert main(args) == 7 and not out.exists()
    refusal = capsys.readouterr().err
    assert "fraction 0.5, seed 0" in refusal and "--write-subsets" in refusal

    subsets = tmp_path / "subsets"
    assert main(["experiment", *grid, "--write-subsets", str(subsets)]) == 0
    assert "behaviorlab generate --data" in capsys.readouterr().out
    runs = [_run_grounded_on(run, file, tmp_path / "runs" / file.stem) for file in sorted(subsets.glob("*.parquet"))]
    assert len(runs) == 3  # 50% with seeds 0 and 1, and 100% (the same whole training log for both seeds)
    args = ["experiment", *grid, *[a for r in runs for a in ("--synthetic", str(r))], "--out", str(out),
            "--scenarios", "real_only,real_continued,pretrain_augment"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "oracle" in table and "gap closed" in table and "wins" in table and "95% CI" in table
    payload = json.loads(out.read_text())
    # per (fraction, seed): real only, oracle, control, and 2 sources x pretrain_augment
    assert len(payload["cells"]) == 2 * 2 * 5 and payload["version"] == 2
    assert all(row["gain_ci"] is not None for row in payload["summary"])  # two seeds: intervals
    assert main(args) == 0  # resumes: every cell is already there
    assert json.loads(out.read_text())["cells"] == payload["cells"]

    shift = run / "experiment-shift.json"
    assert main(["experiment", "--real", str(real), "--out", str(shift), "--model", "markov", "--fractions", "1",
                 "--seeds", "0", "--shift", "night"]) == 0
    assert "Environment shift (trained on day scenes (06-18h), tested on evening and night (18-06h)): train" in capsys.readouterr().out

    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert html.count("data:image/png") == 5 and "Environment shift" in html and "gap closed" in html


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
    other.write_text(json.dumps({"version": 2, "digest": "different", "config": {}, "cells": [], "summary": []}))
    assert main(["experiment", "--real", str(tiny_run.real), "--out", str(other), "--model", "markov",
                 "--seeds", "0", "--fractions", "1"]) == 7
    assert "different experiment" in capsys.readouterr().err
    assert main(["experiment", "--real", str(tiny_run.real), "--model", "markov"]) == 2
    assert "--out" in capsys.readouterr().err


def test_json_out_names_the_evaluation_file_like_other_commands(tiny_run, tmp_path) -> None:
    target = tmp_path / "elsewhere.json"
    assert main(["evaluate-synthetic", str(tiny_run.run), "--real", str(tiny_run.real), "--json-out", str(target)]) == 0
    assert SyntheticEvaluation.from_json(target.read_text()).fidelity


@pytest.mark.llm
def test_experiment_generates_each_subsets_runs_itself_and_resumes(tiny_run, tmp_path, smollm2_path, capsys) -> None:
    """--generate with the real small model: one grounded and one ungrounded run per distinct real subset,
    each paired with its own cells; a second call generates nothing and trains nothing."""
    out = tmp_path / "e.json"
    args = ["experiment", "--real", str(tiny_run.real), "--out", str(out), "--model", "markov", "--fractions", "0.5,1",
            "--seeds", "0", "--scenarios", "real_only,real_continued,pretrain_augment", "--generate", "2", "--ablation",
            "--per-profile", "2", "--llm-model", str(smollm2_path)]
    assert main(args) == 0
    runs = tmp_path / "e-runs"
    names = sorted(str(p.parent.relative_to(runs)) for p in runs.glob("**/manifest.json"))
    assert names == ["real-0.5-seed0", "real-1", "ungrounded/real-0.5-seed0", "ungrounded/real-1"]
    for name in names:
        manifest = json.loads((runs / name / "manifest.json").read_text())
        assert manifest["config"]["grounding"] == ("none" if name.startswith("ungrounded") else "real")
        assert manifest["config"]["n_users"] == 2 and manifest["profiles"] == 1  # one profile's two sequences
    payload = json.loads(out.read_text())
    assert {c["source"] for c in payload["cells"]} == {"none", "oracle", "llm", "llm_ungrounded", "markov"}
    first = out.read_bytes()
    assert main(args) == 0  # resumes: the runs are complete and every cell is saved
    assert json.loads(out.read_bytes())["cells"] == json.loads(first)["cells"]
    assert "At 50% real data" in capsys.readouterr().out
