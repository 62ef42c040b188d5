"""The error hierarchy's shared messages."""

from __future__ import annotations

import pytest

from behaviorlab.errors import ModelError, NotFittedError
from behaviorlab.models.registry import create_model, model_names
from behaviorlab.models.time_to_next import FeatureTableConfig, NextHourBinModel, TimeToNextModel


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_refuses_to_predict_or_save_before_fit(name, tmp_path) -> None:
    model = create_model(name)
    with pytest.raises(NotFittedError, match=f"The {name} model is not fitted yet"):
        model.predict_next(["x"])
    with pytest.raises(NotFittedError):
        model.save(tmp_path / "model")
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("cls", [TimeToNextModel, NextHourBinModel])
def test_the_timing_models_refuse_to_save_before_fit(cls, tmp_path) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        cls(FeatureTableConfig()).save(tmp_path / "model")


def test_not_fitted_is_a_model_error_with_advice() -> None:
    error = NotFittedError("markov")
    assert isinstance(error, ModelError) and error.exit_code == ModelError.exit_code
    assert str(error) == "The markov model is not fitted yet\n  -> Call fit() first (or a `train` command), or load a saved model."
