"""Outlier filter: score generated sequences with a Markov model fitted on the real training log.

The score is the negative log-likelihood per event (higher = less like the real data); sequences past
Q3 + 1.5 IQR of the generated scores are outliers (Tukey's fence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from behaviorlab.schema import EventLog


@dataclass(frozen=True)
class OutlierReport:
    scores: tuple[float, ...]  # negative log-likelihood per event, one per sequence
    threshold: float
    dropped: tuple[int, ...]  # indices of the sequences past the threshold

    def to_dict(self) -> dict:
        return {"method": "markov order-2 NLL per event, Q3 + 1.5 IQR", "threshold": round(self.threshold, 4),
                "dropped": len(self.dropped), "scored": len(self.scores)}


def markov_outliers(real: EventLog, sequences: Sequence[Sequence[str]]) -> OutlierReport:
    from behaviorlab.models.markov import MarkovConfig, MarkovModel

    if not sequences:
        return OutlierReport((), float("inf"), ())
    model = MarkovModel(MarkovConfig(order=2)).fit(real)
    scores = np.asarray([-model.log_likelihood(list(s)) / max(len(s), 1) for s in sequences])
    q1, q3 = np.percentile(scores, [25, 75])
    threshold = float(q3 + 1.5 * (q3 - q1))
    dropped = tuple(int(i) for i in np.flatnonzero(scores > threshold))
    return OutlierReport(tuple(float(s) for s in scores), threshold, dropped)
