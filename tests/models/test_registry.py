"""Registry, configs, and the saved-model directory."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from behaviorlab.errors import ConfigError, ModelError
from behaviorlab.models.base import NextBehaviorModel
from behaviorlab.models.registry import create_model, load_model, model_names
from behaviorlab.schema import EventLog, Schema


def _log() -> EventLog:
    rows = [(f"u{u}", t, a) for u in range(3) for t, a in enumerate(["x", "y", "z", "x"])]
    frame = pl.DataFrame(rows, schema={"user_id": pl.String, "position": pl.Int64, "action": pl.String}, orient="row")
    return EventLog(frame, Schema(time="position"))


def test_names_and_protocol():
    assert {"popularity", "markov", "gru4rec", "lstm", "sasrec"} <= set(model_names())
    for name in ("popularity", "markov", "sasrec"):
        assert isinstance(create_model(name), NextBehaviorModel)


def test_unknown_model_and_bad_config_are_typed_errors():
    with pytest.raises(ModelError, match="Unknown model"):
        create_model("nope")
    with pytest.raises(ConfigError, match="embeding_dim"):
        create_model("sasrec", embeding_dim=8)
    with pytest.raises(ConfigError):
        create_model("markov", order=0)


def test_models_without_explanations_say_so():
    from behaviorlab.models.explain import explain_prediction

    with pytest.raises(ModelError, match="cannot explain"):
        explain_prediction(create_model("popularity").fit(_log()), ["x"], "y")
    with pytest.raises(ModelError, match="non-empty history"):
        explain_prediction(create_model("markov").fit(_log()), [], "y")


def test_predict_needs_a_fitted_model():
    with pytest.raises(ModelError, match="not fitted"):
        create_model("sasrec").predict_next(["x"])


def test_save_replaces_atomically_and_load_checks_the_directory(tmp_path):
    target = tmp_path / "model"
    first = create_model("popularity").fit(_log())
    first.save(target)
    second = create_model("markov").fit(_log())
    second.save(target)  # replaces the first model as a whole
    assert load_model(target).name == "markov"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging leftovers
    with pytest.raises(ModelError, match="not a saved model"):
        load_model(tmp_path)
    manifest = json.loads((target / "model.json").read_text())
    (target / "model.json").write_text(json.dumps(manifest | {"format_version": 99}))
    with pytest.raises(ModelError, match="format version"):
        load_model(target)


def test_failed_save_leaves_the_previous_model(tmp_path, monkeypatch):
    target = tmp_path / "model"
    model = create_model("markov").fit(_log())
    model.save(target)
    # a file name may hold a folder ("model/model.json"), but not below a file: the second write fails
    monkeypatch.setattr(type(model), "_state_files", lambda self: {"counts.json": b"{}", "counts.json/x": b"x"})
    with pytest.raises(OSError):
        model.save(target)
    assert load_model(target).name == "markov"
    np.testing.assert_array_equal(load_model(target).transition_probabilities(["x"]), model.transition_probabilities(["x"]))
