"""The HTML report: one self-contained file with the tables, plots, profiles and scenario charts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from behaviorlab.datasets import ColumnMapping, ReadOptions, load
from behaviorlab.errors import DataError
from behaviorlab.evaluate.baselines import markov_synthetic
from behaviorlab.evaluate.synthetic import (
    EVALUATION_FILE,
    SyntheticEvaluationConfig,
    evaluate_synthetic,
    train_and_holdout,
)
from behaviorlab.generate.run_files import read_run
from behaviorlab.report.builder import (
    Experiment,
    ReportData,
    build_report,
    profile_examples,
    render_report,
    write_report,
)
from behaviorlab.schema import ACTION, USER


def _row(source: str, scenario: str, mean: float, gain: float, spread: float, ci: list[float] | None,
         gap: float | None, wins: bool | None) -> dict:
    return {"source": source, "scenario": scenario, "fraction": 0.1, "seeds": 3, "metric": "NDCG@10", "mean": mean,
            "std": 0.01, "gain_mean": gain, "gain_std": spread, "gain_ci": ci, "gap_closed": gap, "wins": wins}


SUMMARY = [
    _row("none", "real_only", 0.30, 0.0, 0.0, [0.0, 0.0], None, None),
    _row("oracle", "real_only", 0.36, 0.2, 0.01, [0.18, 0.22], None, None),
    _row("llm", "pretrain_augment", 0.33, 0.1, 0.03, [0.03, 0.17], 0.5, True),
    _row("markov", "pretrain_augment", 0.27, -0.1, 0.02, [-0.15, -0.05], -0.5, False),
]


def test_full_report_is_self_contained(tiny_run, tmp_path) -> None:
    run = read_run(tiny_run.run)
    real = load(tiny_run.real)
    train, holdout, _ = train_and_holdout(real, SyntheticEvaluationConfig())
    baseline = markov_synthetic(train, [10] * 24)
    evaluation = evaluate_synthetic(train, holdout, run.synthetic, run.profiles, baseline=baseline)
    assert all(row.baseline is not None for row in evaluation.fidelity + evaluation.privacy)
    data = ReportData(title="Tiny <run>", manifest=run.manifest, real=holdout, synthetic=run.synthetic,
                      evaluation=evaluation, profiles=profile_examples(run),
                      experiments=[Experiment("Scenarios", SUMMARY)])
    path = write_report(tmp_path / "out" / "report.html", data)
    html = path.read_text(encoding="utf-8")
    assert "Tiny &lt;run&gt;" in html  # escaped, never raw markup from data
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing loaded from elsewhere
    assert "<link" not in html and "<script" not in html
    assert html.count('src="data:image/png;base64,') == 4  # actions, times, transitions, scenarios
    for name in ("action_jsd", "discriminator_auc", "personality_gap", "exact_copy_rate", "membership_auc"):
        assert f"<code>{name}</code>" in html
    assert "p000" in html and "nurse" in html and " → " in html  # a profile with its generated sequence
    assert "+10.0% [+3.0%, +17.0%]" in html and "-10.0% [-15.0%, -5.0%]" in html
    assert "50%" in html and "WINS" in html  # the gap closed and the winning cell
    assert "tokens.prompt" in html and "<th>Markov baseline</th>" in html
    # the one-screen summary comes first: what was generated, fidelity beside Markov and the reference, a sentence
    summary = html[html.index('<h2 id="summary">'):html.index('<h2 id="manifest">')]
    assert "24 sequences" in summary and "real exemplars, habits and counts" in summary
    assert "<th>fidelity</th>" in summary and "<code>action_jsd</code>" in summary
    assert ("At 10% real data (NDCG@10, best cell per source), closed of the gap to the oracle: the LLM data 50% "
            "(pretrain_augment); Markov data -50% (pretrain_augment); wins: llm pretrain_augment.") in summary


def test_sections_without_inputs_are_left_out(tiny_run) -> None:
    run = read_run(tiny_run.run)
    html = render_report(ReportData(title="bare", synthetic=run.synthetic))
    assert "data:image/png" not in html and "Fidelity" not in html and "Run manifest" not in html


def test_profile_examples_pair_each_profile_with_its_sequences(tiny_run, tmp_path, run_writer) -> None:
    examples = profile_examples(read_run(tiny_run.run))
    assert [p.profile_id for p, _ in examples] == [f"p{i:03d}" for i in range(24)]
    assert all(len(seqs) == 1 and len(seqs[0]) == 10 for _, seqs in examples)
    run_writer(tmp_path / "grouped", np.random.default_rng(1), sequences_per_profile=3)
    examples = profile_examples(read_run(tmp_path / "grouped"))
    assert len(examples) == 8 and all(len(seqs) == 3 for _, seqs in examples)


def test_the_plain_summary_says_gain_where_there_is_no_gap_and_when_no_win_can_be_decided() -> None:
    from behaviorlab.evaluate.scenarios import plain_summary

    one_seed = [row | {"fraction": 1.0, "gap_closed": None, "wins": None, "gain_ci": None} for row in SUMMARY]
    one_seed.append(_row("none", "real_continued", 0.31, 0.026, 0.0, None, None, None) | {"fraction": 1.0})
    assert plain_summary(one_seed) == [(
        "At 100% real data (NDCG@10, best cell per source), gained over real only (no gap to close): the LLM data "
        "+10.0% (pretrain_augment); Markov data -10.0% (pretrain_augment); the real->real control +2.6%; no win can "
        "be decided (one seed, or no control in the grid).")]


def test_build_report_reads_what_the_run_has(tiny_run, tmp_path) -> None:
    bare = build_report(tiny_run.run)
    assert bare.title == "behaviorlab report: run" and bare.manifest is not None and bare.profiles
    assert bare.missing() == ["evaluation (run evaluate-synthetic)", "real data for plots (--real)",
                              "experiments (run experiment --out RUN/experiment.json)"]
    with_real = build_report(tiny_run.run, tiny_run.real, title="T")
    assert with_real.title == "T" and set(with_real.real.frame.get_column("split").unique()) == {"test"}
    results = {"version": 2, "digest": "d", "config": {"predictor": "markov", "predictor_settings": {}, "seeds": [0],
                                                      "fractions": [1.0], "title": "Named"}, "cells": [], "summary": SUMMARY}
    (tiny_run.run / "experiment.json").write_text(json.dumps(results))
    experiments = build_report(tiny_run.run).experiments
    assert [e.title for e in experiments] == ["Named"] and experiments[0].summary == SUMMARY
    with pytest.raises(DataError, match="not a run directory"):
        build_report(tmp_path / "missing")


def test_the_real_data_is_read_as_evaluate_synthetic_read_it(tiny_run, tmp_path) -> None:
    real = load(tiny_run.real)
    path = tmp_path / "real.csv"  # the same events, `;`-separated without a header
    real.frame.select(USER, real.schema.time, ACTION).write_csv(path, separator=";", include_header=False)
    read = ReadOptions(mapping=ColumnMapping(user="0", time="1", action="2"), separator=";", header=False)
    run = read_run(tiny_run.run)
    train, holdout, _ = train_and_holdout(real, SyntheticEvaluationConfig())
    evaluation = evaluate_synthetic(train, holdout, run.synthetic, run.profiles)
    evaluation.inputs = {"real": str(path), "real_read": read.model_dump_json(), "synthetic": str(tiny_run.run)}
    evaluation.save(tiny_run.run / EVALUATION_FILE)
    assert build_report(tiny_run.run).real.n_events == real.n_events  # no published split in this file: all of it
    with pytest.raises(DataError, match="seems to be separated by ';'"):  # given options replace the recorded ones
        build_report(tiny_run.run, real_read=read.model_copy(update={"separator": ","}))
    # An evaluation written before the record kept only the format.
    evaluation.inputs = {"real": str(tiny_run.real), "real_format": "smartthings-csv"}
    evaluation.save(tiny_run.run / EVALUATION_FILE)
    assert set(build_report(tiny_run.run).real.frame.get_column("split").unique()) == {"test"}
