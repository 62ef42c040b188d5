"""`experiment` as library calls: the setting (split, oracle, shift) and the config it runs with."""

from __future__ import annotations

import numpy as np
from tests.conftest import write_tiny_real

from behaviorlab.datasets import load
from behaviorlab.evaluate.experiment import experiment, experiment_config, experiment_setting
from behaviorlab.evaluate.scenarios import ExperimentConfig, SyntheticRun
from behaviorlab.sequences import leave_one_out, published_split


def test_the_setting_splits_as_every_command_does(tmp_path, sequences_log) -> None:
    write_tiny_real(tmp_path / "real", np.random.default_rng(0))
    published = load(tmp_path / "real")
    setting = experiment_setting(published)
    assert setting.unit == "sequences" and setting.shift is None and setting.counts is None
    assert setting.split.test == published_split(published).test and setting.oracle is setting.split.train
    plain = sequences_log([["a", "b", "c", "a"], ["b", "c", "a", "b"]])
    assert experiment_setting(plain).unit == "events" and experiment_setting(plain).split.test == leave_one_out(plain).test


def test_a_shift_trains_on_its_scene_and_names_the_experiment(tmp_path) -> None:
    write_tiny_real(tmp_path / "real", np.random.default_rng(0))
    setting = experiment_setting(load(tmp_path / "real"), "night")
    assert setting.counts is not None and setting.counts.train[0] < setting.counts.train[1]
    assert setting.oracle.n_users > setting.split.train.n_users  # the oracle has both scenes
    config = experiment_config(ExperimentConfig(), setting)
    assert config.title == f"Environment shift: {setting.shift.description}"


def test_sources_default_to_the_runs_llm_sources_and_markov(sequences_log) -> None:
    log = sequences_log([["a", "b", "c", "a"], ["b", "c", "a", "b"]])
    setting = experiment_setting(log)
    runs = [SyntheticRun("r", log, None, "llm_ungrounded")]
    assert experiment_config(ExperimentConfig(), setting).sources == ("markov",)
    assert experiment_config(ExperimentConfig(), setting, runs).sources == ("llm_ungrounded", "markov")
    chosen = ExperimentConfig(sources=("markov",))
    assert experiment_config(chosen, setting, runs) is chosen  # chosen sources and no shift: nothing to fill in


def test_experiment_runs_the_grid_and_summarises_it(tmp_path) -> None:
    write_tiny_real(tmp_path / "real", np.random.default_rng(0))
    config = ExperimentConfig(predictor="markov", fractions=(1.0,), seeds=(0,), scenarios=("real_only", "pretrain_augment"))
    result = experiment(experiment_setting(load(tmp_path / "real")), config, results_path=tmp_path / "e.json")
    assert {(c.source, c.scenario) for c in result.cells} == {("none", "real_only"), ("oracle", "real_only"),
                                                              ("markov", "pretrain_augment")}
    assert result.summary[0]["scenario"] == "real_only" and result.summary[0]["source"] == "none"
    assert (tmp_path / "e.json").is_file() and result.config.sources == ("markov",)
