"""The served models, loaded together as one immutable set: a reload builds a new set and swaps it in whole.

A next-behavior model (any kind `models.registry.load_model` opens that predicts next actions) answers
/predict; an anomaly detector answers /score. Other saved kinds (time-to-next, daily counts) are refused
at start, naming the kind.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from behaviorlab.errors import ModelError
from behaviorlab.serve.config import ModelSpec

Role = Literal["predict", "score"]


@dataclass(frozen=True)
class ServedModel:
    """One loaded model and what /models says about it."""

    name: str
    path: Path
    kind: str  # the manifest's kind: "sasrec", "markov", "anomaly-detector", ...
    role: Role
    model: Any  # a NextBehaviorModel (role predict) or a SequenceAnomalyDetector (role score)
    trained_on: str | None  # EventLog.digest() of the training log, when the manifest records it
    context: Mapping[str, Sequence[str]] | None  # the context it reads: column -> known values ({}: none; None: any text)

    @property
    def vocabulary(self) -> Any:
        return self.sequence_model.vocabulary

    @property
    def sequence_model(self) -> Any:
        """The next-behavior model that scores actions (a detector's own one for role score)."""
        return self.model.model if self.role == "score" else self.model


@dataclass(frozen=True)
class ModelSet:
    models: Mapping[str, ServedModel]
    loaded_at: float = field(default_factory=time.time)

    def names(self, role: Role | None = None) -> list[str]:
        return sorted(name for name, m in self.models.items() if role is None or m.role == role)


def load_served(spec: ModelSpec) -> ServedModel:
    """Load one --model NAME=DIR; a kind that neither predicts nor scores is a ModelError naming it."""
    from behaviorlab.models.anomaly import SequenceAnomalyDetector
    from behaviorlab.models.base import TRAIN_DIGEST, NextBehaviorModel
    from behaviorlab.models.registry import load_model

    if not spec.path.is_dir():
        raise ModelError(f"--model {spec.name}={spec.path}: no such directory",
                         hint="Pass a directory written by `behaviorlab train --out` or `behaviorlab anomaly train --out`.")
    model = load_model(spec.path)
    if isinstance(model, SequenceAnomalyDetector):
        inner = model.model
        return ServedModel(spec.name, spec.path, model.name, "score", model, inner.metadata_.get(TRAIN_DIGEST),
                           _column_context(model))
    if isinstance(model, NextBehaviorModel):
        return ServedModel(spec.name, spec.path, model.name, "predict", model, model.metadata_.get(TRAIN_DIGEST),
                           model.context_values())
    raise ModelError(f"--model {spec.name}={spec.path} holds a '{model.name}' model, which serve cannot answer with",
                     hint="Serve next-behavior models (`behaviorlab train`) for /predict and anomaly detectors "
                          "(`behaviorlab anomaly train`) for /score.")


def _column_context(detector: Any) -> dict[str, list[str]]:
    """A detector reads one context value per event, from its training statistics' domain."""
    column = detector.config.context_column
    if column is None:
        return {}
    return {column: list(detector.statistics_.context_values)}


def load_model_set(specs: Sequence[ModelSpec]) -> ModelSet:
    """Every model of `specs`, or one ModelError listing every one that failed to load."""
    loaded, problems = {}, []
    for spec in specs:
        try:
            loaded[spec.name] = load_served(spec)
        except ModelError as exc:
            problems.append(f"{spec.name}: {exc}")
    if problems:
        raise ModelError(f"{len(problems)} of {len(specs)} models could not be loaded:\n  " + "\n  ".join(problems),
                         hint="Fix or drop those --model entries.")
    return ModelSet(loaded)
