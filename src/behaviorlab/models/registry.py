"""Models by name. Entries are import paths, so listing names imports nothing heavy (no torch).

`_MODELS` are the next-behavior models (`create_model`, `behaviorlab train --model`); `_TASK_MODELS`
are the other kinds that save the same directory layout. `load_model` opens both."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from behaviorlab.config import parse_config
from behaviorlab.errors import ModelError
from behaviorlab.models.base import SequenceModel, read_manifest

# name -> "module:Class". The class has `name` equal to the key and a `config_class`.
_MODELS: dict[str, str] = {
    "popularity": "behaviorlab.models.popularity:PopularityModel",
    "markov": "behaviorlab.models.markov:MarkovModel",
    "gru4rec": "behaviorlab.models.recurrent:GRU4RecModel",
    "lstm": "behaviorlab.models.recurrent:LSTMModel",
    "sasrec": "behaviorlab.models.sasrec:SASRecModel",
    "ctr": "behaviorlab.models.ctr:CTRModel",
    "zero-shot-llm": "behaviorlab.models.zero_shot:ZeroShotLLMModel",
}
# name -> "module:Class" of the task models; the class has `name` equal to the key and a `load(path)`.
_TASK_MODELS: dict[str, str] = {
    "time-to-next": "behaviorlab.models.time_to_next:TimeToNextModel",
    "next-hour-bin": "behaviorlab.models.time_to_next:NextHourBinModel",
    "daily-counts": "behaviorlab.models.daily_counts:DailyCountsModel",
    "anomaly-detector": "behaviorlab.models.anomaly:SequenceAnomalyDetector",
}


def model_names() -> list[str]:
    return sorted(_MODELS)


def model_class(name: str) -> type[SequenceModel]:
    try:
        module_name, class_name = _MODELS[name].split(":")
    except KeyError:
        raise ModelError(f"Unknown model {name!r}", hint=f"Choose one of: {', '.join(model_names())}.") from None
    return getattr(importlib.import_module(module_name), class_name)


def create_model(name: str, **config_overrides: Any) -> SequenceModel:
    """A fresh, unfitted model; unknown or invalid config keys raise ConfigError."""
    cls = model_class(name)
    return cls(parse_config(cls.config_class, config_overrides, where=f"{name} configuration"))


def load_model(path: str | Path) -> Any:
    """Load a saved model directory, whatever kind it holds (a next-behavior model or a task model)."""
    name = read_manifest(Path(path))["name"]
    entry = _MODELS.get(name) or _TASK_MODELS.get(name)
    if entry is None:
        raise ModelError(f"{path} holds a '{name}' model, a kind this version of behaviorlab does not know",
                         hint=f"Open it with the behaviorlab version (or plugin) that saved it. Known kinds: "
                              f"{', '.join(sorted(_MODELS | _TASK_MODELS))}.")
    module_name, class_name = entry.split(":")
    return getattr(importlib.import_module(module_name), class_name).load(path)
