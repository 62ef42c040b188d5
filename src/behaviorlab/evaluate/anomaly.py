"""The anomaly-detection task on a log with its published split (SmartThings): train, valid and test
sequences, and the report of a detector (models.anomaly) on test sequences with injected anomalies."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from behaviorlab.errors import DataError, EvaluationError
from behaviorlab.models.anomaly import SequenceAnomalyDetector, precision_recall_f1, sequences_with_context
from behaviorlab.models.anomaly_injection import InjectedSet
from behaviorlab.schema import SPLIT, EventLog
from behaviorlab.sequences import published_parts


@dataclass(frozen=True)
class KindReport:
    kind: str
    n_anomalies: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class AnomalyReport:
    threshold: float
    n_normal: int
    overall: KindReport
    per_kind: list[KindReport]
    skipped: dict[str, int]  # per kind: sequences that offered no place for that anomaly

    def to_dict(self) -> dict:
        return asdict(self)


def split_logs(log: EventLog, column: str = SPLIT) -> tuple[EventLog, EventLog, EventLog]:
    """(train, valid, test) logs of a log that carries its published split (SmartThings)."""
    parts = published_parts(log, column)
    empty = [name for name, part in zip(("train", "valid", "test"), parts, strict=True) if part.n_events == 0]
    if empty:
        raise DataError(f"The published split has no {', '.join(empty)} rows",
                        hint="Anomaly detection needs train, valid and test sequences.")
    return parts


def anomaly_report(detector: SequenceAnomalyDetector, labelled: InjectedSet) -> AnomalyReport:
    """Precision/recall/F1 overall and per kind (each kind against all normal sequences)."""
    flagged = detector.flag(labelled.sequences)
    kinds = np.array([s.kind for s in labelled.sequences])
    normal = kinds == "normal"
    if normal.all():
        raise EvaluationError("No anomalous sequences to evaluate on", hint="Inject anomalies into the test split.")

    def report(kind: str, rows: np.ndarray) -> KindReport:
        labels = ~normal[rows]
        precision, recall, f1 = precision_recall_f1(labels, flagged[rows])
        return KindReport(kind, int(labels.sum()), precision, recall, f1)

    per_kind = [report(str(kind), normal | (kinds == kind)) for kind in dict.fromkeys(kinds[~normal].tolist())]
    return AnomalyReport(float(detector.threshold_), int(normal.sum()), report("overall", np.ones_like(normal)),
                         per_kind, dict(labelled.skipped))


def evaluate_detector(detector: SequenceAnomalyDetector, test: EventLog) -> AnomalyReport:
    """Score the test sequences once, with anomalies injected under another seed (offset 1)."""
    return anomaly_report(detector, detector.inject(sequences_with_context(test, detector.config.context_column), 1))
