"""Anomaly detection for smart-home sequences: how surprising is a sequence to a trained model?

Each event t of a sequence gets a surprisal

    s_t = -log p(a_t | a_<t)  +  w * -log p(c_t | a_t)  +  w_seq * -log p(c_t | c_{t-1})

where p(a_t | a_<t) comes from any fitted `NextBehaviorModel` (Markov, GRU4Rec, SASRec, ...; the
first event, which has no history, from the add-alpha smoothed training frequency of actions) and
p(c_t | a_t) is how often that device-control happens in that context value (the hour bin) in
training, add-alpha smoothed; p(c_t | c_{t-1}) how often one hour bin follows another (events
of a sequence move forward in time, so a moved event usually breaks that order). The context terms
are what let a time-blind sequence model notice an event at an unusual hour. A sequence's score
aggregates its surprisals (sum, mean or max: the max catches a single odd event in an otherwise
normal sequence).

The threshold is chosen on validation sequences with injected anomalies only (F1-optimal, or a
quantile of the normal validation scores); the test split, with anomalies injected under another
seed, is scored once to report precision, recall and F1 per anomaly kind and overall (`evaluate.anomaly`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from behaviorlab.config import StrictConfig, parse_config
from behaviorlab.errors import DataError, EvaluationError, ModelError
from behaviorlab.models.anomaly_injection import (
    ContextSequence,
    InjectedSet,
    InjectionConfig,
    TrainingStatistics,
    inject_anomalies,
)
from behaviorlab.models.base import (
    MANIFEST,
    SequenceModel,
    log_softmax_rows,
    manifest_file,
    open_saved,
    write_directory_atomic,
)
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import ACTION, HOUR_BINS, USER, EventLog
from behaviorlab.sequences import NextEventExamples, last_event_examples

DETECTOR_FILE = "detector.json"
MODEL_DIR = "model"


class AnomalyConfig(StrictConfig):
    context_column: str | None = "hour_bin"   # the per-event context of the context term; None = none
    context_weight: float = Field(1.0, ge=0.0)
    context_order_weight: float = Field(1.0, ge=0.0)  # w_seq: weight of -log p(c_t | c_{t-1})
    context_alpha: float = Field(1.0, gt=0.0)  # add-alpha smoothing of p(context | action) and p(action)
    aggregate: Literal["sum", "mean", "max"] = "max"
    threshold_rule: Literal["f1", "quantile"] = "f1"
    normal_quantile: float = Field(0.95, gt=0.0, lt=1.0)  # for threshold_rule="quantile"
    injection: InjectionConfig = Field(default_factory=InjectionConfig)


def sequences_with_context(log: EventLog, context_column: str | None) -> list[ContextSequence]:
    """Each user's events in time order as a ContextSequence (context = that column's values)."""
    if context_column is not None and context_column not in log.frame.columns:
        raise DataError(f"The log has no '{context_column}' column for the anomaly context",
                        hint="Set context_column to one of the log's extras, or to none.")
    columns = [pl.col(ACTION)] + ([pl.col(context_column).cast(pl.String)] if context_column else [])
    grouped = (log.frame.sort([USER, log.time_column], maintain_order=True)
               .group_by(USER, maintain_order=True).agg(columns))
    return [
        ContextSequence(source=row[USER], actions=tuple(row[ACTION]),
                        context=tuple(row[context_column]) if context_column else None)
        for row in grouped.iter_rows(named=True)
    ]


def precision_recall_f1(labels: np.ndarray, flagged: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of boolean flags against boolean labels (0 where undefined)."""
    true_positive = float(np.sum(labels & flagged))
    precision = true_positive / max(float(flagged.sum()), 1.0)
    recall = true_positive / max(float(labels.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def f1_optimal_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut (flag score > cut) with the best F1 among the midpoints between distinct scores."""
    distinct = np.unique(scores)
    if distinct.size < 2:
        return float(distinct[0]) if distinct.size else 0.0
    cuts = (distinct[:-1] + distinct[1:]) / 2
    f1s = [precision_recall_f1(labels, scores > cut)[2] for cut in cuts]
    return float(cuts[int(np.argmax(f1s))])


class SequenceAnomalyDetector:
    """Scores sequences with a fitted next-behavior model plus a context term; flags score > threshold."""

    name = "anomaly-detector"  # its kind in the registry and in saved manifests

    def __init__(self, model: SequenceModel, config: AnomalyConfig | None = None) -> None:
        self.model = model
        self.config = config or AnomalyConfig()
        self.action_log_probs_: dict[str, float] | None = None            # log p(action), for first events
        self.context_log_probs_: dict[str, dict[str, float]] | None = None  # action -> value -> log p(value | action)
        self.context_floor_: float = 0.0       # log p(value | action) for an action unseen in training
        self.context_order_log_probs_: dict[tuple[str, str], float] | None = None  # (previous, value) -> log p
        self.statistics_: TrainingStatistics | None = None
        self.threshold_: float | None = None

    # -- learning -------------------------------------------------------------------------------
    def fit_statistics(self, train: EventLog) -> None:
        """Count actions, action pairs and (action, context) pairs on the training log."""
        sequences = sequences_with_context(train, self.config.context_column)
        # Hour bins have a known domain; a bin never used in training is the most unusual of all.
        domain = HOUR_BINS if self.config.context_column == "hour_bin" else ()
        self._adopt_statistics(TrainingStatistics.from_sequences(sequences, self.model.vocabulary.actions, domain))

    def calibrate(self, valid: Sequence[ContextSequence]) -> float:
        """Choose the threshold on validation sequences (with injected anomalies); returns it."""
        scores = self.score_sequences(valid)
        labels = np.array([s.is_anomaly for s in valid])
        if self.config.threshold_rule == "quantile":
            if not (~labels).any():
                raise EvaluationError("No normal validation sequences to take a quantile of")
            self.threshold_ = float(np.quantile(scores[~labels], self.config.normal_quantile))
        else:
            if not labels.any() or labels.all():
                raise EvaluationError("The F1-optimal threshold needs normal and anomalous validation sequences",
                                      hint="Inject anomalies into the validation split (inject_anomalies).")
            self.threshold_ = f1_optimal_threshold(scores, labels)
        return self.threshold_

    # -- scoring --------------------------------------------------------------------------------
    def event_surprisals(self, sequences: Sequence[ContextSequence]) -> list[np.ndarray]:
        """Per sequence, float64 [len] surprisals s_t (see the module docstring)."""
        if self.action_log_probs_ is None or self.context_log_probs_ is None:
            raise ModelError("The anomaly detector has no training statistics", hint="Call fit_statistics(train) first.")
        self.model.check_known([a for s in sequences for a in s.actions])
        # One batched model call over every prefix of every sequence: row r is (history -> target).
        owners, histories, targets = [], [], []
        for index, sequence in enumerate(sequences):
            for t in range(1, len(sequence.actions)):
                owners.append(index)
                histories.append(list(sequence.actions[:t]))
                targets.append(sequence.actions[t])
        examples = NextEventExamples([sequences[i].source for i in owners], histories, targets)
        log_probs = log_softmax_rows(self.model.predict_scores(examples))  # [R, V], rows sum to 1 in prob space
        columns = np.array(self.model.vocabulary.columns_of(targets), dtype=np.int64)
        transition = -log_probs[np.arange(len(targets)), columns] if targets else np.zeros(0)
        out = [np.empty(len(s.actions)) for s in sequences]
        for index, sequence in enumerate(sequences):
            if sequence.actions:
                out[index][0] = -self.action_log_probs_[sequence.actions[0]]
        cursor = {i: 1 for i in range(len(sequences))}
        for owner, value in zip(owners, transition, strict=True):
            out[owner][cursor[owner]] = value
            cursor[owner] += 1
        for index, sequence in enumerate(sequences):
            if sequence.context is None:
                continue
            out[index] += self.config.context_weight * np.array([
                -self.context_log_probs_[a].get(c, self.context_floor_)
                for a, c in zip(sequence.actions, sequence.context, strict=True)])
            out[index][1:] += self.config.context_order_weight * np.array([
                -self.context_order_log_probs_.get(pair, self.context_floor_)
                for pair in zip(sequence.context, sequence.context[1:], strict=False)])
        return out

    def score_sequences(self, sequences: Sequence[ContextSequence]) -> np.ndarray:
        """float64 [N]: the aggregated surprisal of each sequence (higher = more anomalous)."""
        return self.aggregate_scores(self.event_surprisals(sequences))

    def aggregate_scores(self, surprisals: Sequence[np.ndarray]) -> np.ndarray:
        """float64 [N]: event_surprisals' arrays aggregated as configured (sum, mean or max; 0 for an empty one)."""
        aggregate = {"sum": np.sum, "mean": np.mean, "max": np.max}[self.config.aggregate]
        return np.array([aggregate(s) if s.size else 0.0 for s in surprisals])

    def flag(self, sequences: Sequence[ContextSequence]) -> np.ndarray:
        if self.threshold_ is None:
            raise ModelError("The anomaly detector has no threshold", hint="Call calibrate(valid) first.")
        return self.score_sequences(sequences) > self.threshold_

    # -- evaluation -----------------------------------------------------------------------------
    def inject(self, normal: Sequence[ContextSequence], seed_offset: int) -> InjectedSet:
        """Inject the configured anomaly kinds, seeded by the config's seed plus `seed_offset`."""
        if self.statistics_ is None:
            raise ModelError("The anomaly detector has no training statistics", hint="Call fit_statistics(train) first.")
        injection = self.config.injection.model_copy(update={"seed": self.config.injection.seed + seed_offset})
        return inject_anomalies(normal, self.statistics_, injection)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """The saved-model layout (base.py): the manifest, the statistics and threshold in detector.json, and the
        sequence model's own saved directory in `model/`, all swapped into place at once."""
        if self.statistics_ is None or self.threshold_ is None:
            raise ModelError("Only a fitted and calibrated detector can be saved")
        stats = self.statistics_
        payload = {
            "threshold": self.threshold_,
            "action_counts": dict(stats.action_counts),
            "bigram_counts": [[a, b, n] for (a, b), n in stats.bigram_counts.items()],
            "context_counts": [[a, v, n] for (a, v), n in stats.context_counts.items()],
            "context_values": list(stats.context_values),
            "context_bigram_counts": [[a, b, n] for (a, b), n in stats.context_bigram_counts.items()],
        }
        model_files = {f"{MODEL_DIR}/{name}": data for name, data in self.model.files().items()}
        files = manifest_file(self.name, self.config, {}) | {DETECTOR_FILE: json.dumps(payload).encode()} | model_files
        write_directory_atomic(path, files)

    @classmethod
    def load(cls, path: str | Path) -> SequenceAnomalyDetector:
        from collections import Counter

        from behaviorlab.models.registry import load_model

        directory, manifest = open_saved(path, cls.name)
        payload = json.loads((directory / DETECTOR_FILE).read_text(encoding="utf-8"))
        model = load_model(directory / MODEL_DIR)
        detector = cls(model, parse_config(AnomalyConfig, manifest["config"], where=f"config in {directory / MANIFEST}"))
        stats = TrainingStatistics(
            Counter(payload["action_counts"]),
            Counter({(a, b): n for a, b, n in payload["bigram_counts"]}),
            Counter({(a, v): n for a, v, n in payload["context_counts"]}),
            tuple(payload["context_values"]),
            model.vocabulary.actions,
            Counter({(a, b): n for a, b, n in payload["context_bigram_counts"]}),
        )
        detector._adopt_statistics(stats)
        detector.threshold_ = float(payload["threshold"])
        return detector

    def _adopt_statistics(self, stats: TrainingStatistics) -> None:
        """Smoothed log p(action) and log p(context value | action) from the counts (fit and load)."""
        self.statistics_ = stats
        alpha = self.config.context_alpha
        vocabulary = self.model.vocabulary.actions
        total = sum(stats.action_counts.values()) + alpha * len(vocabulary)
        self.action_log_probs_ = {a: math.log((stats.action_counts[a] + alpha) / total) for a in vocabulary}
        values = stats.context_values
        self.context_log_probs_ = {}
        for action in vocabulary:
            row = [stats.context_counts[(action, v)] for v in values]
            denominator = sum(row) + alpha * len(values)
            self.context_log_probs_[action] = {v: math.log((c + alpha) / denominator) for v, c in zip(values, row, strict=True)}
        self.context_floor_ = -math.log(max(len(values), 1))
        self.context_order_log_probs_ = {}
        for previous in values:
            row = [stats.context_bigram_counts[(previous, v)] for v in values]
            denominator = sum(row) + alpha * len(values)
            self.context_order_log_probs_ |= {(previous, v): math.log((c + alpha) / denominator)
                                              for v, c in zip(values, row, strict=True)}


def fit_detector(model: SequenceModel, train: EventLog, valid: EventLog, config: AnomalyConfig | None = None,
                 progress: ProgressReporter | None = None) -> SequenceAnomalyDetector:
    """Fit `model` on train (checkpoint choice on valid's last events), count the statistics on train,
    and choose the threshold on valid with anomalies injected (seed offset 0)."""
    model.fit(train, last_event_examples(valid), progress=progress)
    return calibrated_detector(model, train, valid, config)


def calibrated_detector(model: SequenceModel, train: EventLog, valid: EventLog,
                        config: AnomalyConfig | None = None) -> SequenceAnomalyDetector:
    """A detector around an already fitted model: statistics from train, threshold from valid."""
    detector = SequenceAnomalyDetector(model, config)
    detector.fit_statistics(train)
    detector.calibrate(detector.inject(sequences_with_context(valid, detector.config.context_column), 0).sequences)
    return detector
