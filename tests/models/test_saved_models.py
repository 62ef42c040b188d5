"""One saved-model layout: every kind saves a directory that `load_model` opens to the same predictions;
older and foreign directories are refused with what they are and what to do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from behaviorlab.errors import ModelError
from behaviorlab.evaluate.anomaly import split_logs
from behaviorlab.models.anomaly import AnomalyConfig, fit_detector, sequences_with_context
from behaviorlab.models.base import MANIFEST
from behaviorlab.models.daily_counts import DailyCountsConfig, DailyCountsModel, daily_count_matrix
from behaviorlab.models.registry import create_model, load_model, model_names
from behaviorlab.models.time_to_next import FeatureTableConfig, NextHourBinModel, TimeToNextModel
from behaviorlab.schema import EventLog, Schema
from behaviorlab.sequences import leave_one_out

LOOP = {"epochs": 3, "threads": 1, "device": "cpu"}
TINY = LOOP | {"embedding_dim": 8, "max_len": 6, "batch_size": 16}


def timed_log(n_users: int = 8, days: int = 40) -> EventLog:
    """Users with a few events a day at varying hours, over `days` days."""
    rng = np.random.default_rng(0)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(f"u{u}", start + timedelta(days=d, hours=int(h)), f"a{int(rng.integers(4))}")
            for u in range(n_users) for d in range(days) for h in sorted(rng.integers(6, 23, size=int(rng.integers(1, 4))))]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "action": pl.String},
                         orient="row")
    return EventLog(frame, Schema(name="timed"))


def next_behavior(name: str, config: dict[str, Any]) -> Callable[..., tuple[Any, Callable[[Any], Any]]]:
    def build(chain_log: Callable[..., EventLog], home: EventLog) -> tuple[Any, Callable[[Any], Any]]:
        split = leave_one_out(chain_log(n_users=30, length=10))
        model = create_model(name, **config).fit(split.train, split.valid)
        if name == "zero-shot-llm":  # predicting asks an LLM: its saved settings and vocabulary are what it keeps
            return model, lambda m: (m.config, m.domain_, m.vocabulary.actions)
        return model, lambda m: m.predict_scores(split.test)
    return build


def time_to_next(chain_log: Callable[..., EventLog], home: EventLog) -> tuple[Any, Callable[[Any], Any]]:
    log = timed_log()
    model = TimeToNextModel(FeatureTableConfig(**LOOP))
    table = model.features(log)
    return model.fit(table), lambda m: m.predict_seconds(m.features(log))


def hour_bin(chain_log: Callable[..., EventLog], home: EventLog) -> tuple[Any, Callable[[Any], Any]]:
    model = NextHourBinModel(FeatureTableConfig(**LOOP))
    table = model.features(home)
    return model.fit(table), lambda m: m.predict_proba(m.features(home))


def daily_counts(chain_log: Callable[..., EventLog], home: EventLog) -> tuple[Any, Callable[[Any], Any]]:
    data = daily_count_matrix(timed_log())
    model = DailyCountsModel(DailyCountsConfig(**LOOP)).fit(data)
    return model, lambda m: m.forecast(data, len(data.days) - m.config.horizon)


def anomaly_detector(chain_log: Callable[..., EventLog], home: EventLog) -> tuple[Any, Callable[[Any], Any]]:
    train, valid, test = split_logs(home)
    detector = fit_detector(create_model("markov"), train, valid, AnomalyConfig())
    sequences = sequences_with_context(test, detector.config.context_column)
    return detector, lambda d: (d.threshold_, d.score_sequences(sequences))


KINDS = {name: next_behavior(name, {} if name in ("popularity", "markov", "zero-shot-llm") else
                             (LOOP | {"recent": 5} if name == "ctr" else TINY)) for name in model_names()}
KINDS |= {"time-to-next": time_to_next, "next-hour-bin": hour_bin, "daily-counts": daily_counts,
          "anomaly-detector": anomaly_detector}


def assert_same(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_saves_a_directory_that_load_model_opens_to_the_same_predictions(kind, chain_log, make_home_log,
                                                                                      tmp_path):
    torch.set_num_threads(1)
    model, predict = KINDS[kind](chain_log, make_home_log(n_train=60, n_valid=30, n_test=30))
    model.save(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / MANIFEST).read_text())
    assert manifest["name"] == kind and manifest["format_version"] == 1
    loaded = load_model(tmp_path / "saved")
    assert type(loaded) is type(model)
    assert_same(predict(loaded), predict(model))


def test_a_kind_opened_as_another_says_what_it_holds(make_home_log, tmp_path):
    model, _ = hour_bin(None, make_home_log(n_train=60, n_valid=30, n_test=30))
    model.save(tmp_path / "bins")
    with pytest.raises(ModelError, match="holds a 'next-hour-bin' model, not 'time-to-next'") as error:
        TimeToNextModel.load(tmp_path / "bins")
    assert "load_model" in error.value.hint


@pytest.mark.parametrize(("files", "what", "hint"), [
    ({"config.json": "{}", "weights.pt": "", "vocabulary.json": "{}"}, "time-to-next or next-hour-bin model saved by an older",
     "timing gaps --out"),
    ({"detector.json": "{}"}, "anomaly detector saved by an older", "anomaly train --out"),
    ({"checkpoint.pt": ""}, "checkpoint of an unfinished training run", "--resume"),
    ({"notes.txt": "hello"}, "is not a saved model", "--out"),
    ({MANIFEST: json.dumps({"name": "sasrec", "format_version": 7})}, "in format version 7", "version that saved it"),
    ({MANIFEST: json.dumps({"name": "someone-elses", "format_version": 1})}, "a kind this version of behaviorlab does not know",
     "Known kinds"),
])
def test_older_and_foreign_directories_are_refused_with_what_they_are_and_what_to_do(files, what, hint, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ModelError, match=what) as error:
        load_model(tmp_path)
    assert hint in error.value.hint
