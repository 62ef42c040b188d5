"""Evaluating few synthetic sequences: what cannot be computed is skipped with its reason, the rest is computed."""

import json
import math

import polars as pl

from behaviorlab.cli import main
from behaviorlab.datasets import read_event_log, write_event_log
from behaviorlab.schema import USER


def test_three_synthetic_sequences_skip_only_the_classifier_and_say_why(tiny_run, tmp_path, capsys):
    synthetic = read_event_log(tiny_run.run / "synthetic.parquet")
    few = tmp_path / "three.parquet"
    write_event_log(synthetic.filter(pl.col(USER).is_in(sorted(synthetic.users())[:3])), few)
    out = tmp_path / "evaluation.json"
    assert main(["evaluate-synthetic", str(few), "--real", str(tiny_run.real), "--json-out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Traceback" not in printed.err + printed.out
    assert ("note: discriminator_auc not computed: the 5-fold classifier needs at least 5 sequences on each side, "
            "the samples have 3") in printed.out
    fidelity = {row["name"]: row["value"] for row in json.loads(out.read_text())["fidelity"]}
    assert math.isnan(fidelity.pop("discriminator_auc"))
    assert fidelity and all(not math.isnan(value) for value in fidelity.values())  # every other metric is there
