"""Explanations: which past events drove a prediction, in each model's own terms.

Markov models credit transition counts, SASRec its last layer's attention from the predicting
position, and the recurrent models gradient x input on the history's embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from behaviorlab.errors import ModelError


@dataclass(frozen=True)
class Contribution:
    """One past event and how much it drove the prediction (the unit depends on `Explanation.method`)."""

    position: int  # index in the history, 0 = oldest
    action: str
    weight: float
    detail: str = ""


@dataclass(frozen=True)
class Explanation:
    action: str
    probability: float
    method: str
    contributions: list[Contribution] = field(default_factory=list)
    note: str = ""

    def strongest(self, n: int = 5) -> list[Contribution]:
        """The n contributions with the largest absolute weight, strongest first."""
        return sorted(self.contributions, key=lambda c: -abs(c.weight))[:n]

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action, "probability": self.probability, "method": self.method, "note": self.note,
            "contributions": [
                {"position": c.position, "action": c.action, "weight": c.weight, "detail": c.detail}
                for c in self.contributions
            ],
        }


@runtime_checkable
class Explainable(Protocol):
    def explain(self, history: Sequence[str], action: str, context: Mapping[str, str] | None = None) -> Explanation: ...


def explain_prediction(model: object, history: Sequence[str], action: str,
                       context: Mapping[str, str] | None = None) -> Explanation:
    """Ask `model` why it predicts `action` after `history`; models without explanations say so."""
    if not isinstance(model, Explainable):
        raise ModelError(f"The {getattr(model, 'name', type(model).__name__)} model cannot explain its predictions",
                         hint="Use markov, gru4rec, lstm or sasrec for --explain.")
    if not history:
        raise ModelError("An explanation needs a non-empty history", hint="Pass --history with at least one action.")
    return model.explain(history, action, context)
