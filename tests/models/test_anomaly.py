"""The anomaly detector: likelihood scores, validation-only thresholds, per-kind reports, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.errors import DataError, EvaluationError
from behaviorlab.evaluate.anomaly import evaluate_detector, split_logs
from behaviorlab.models.anomaly import (
    AnomalyConfig,
    SequenceAnomalyDetector,
    f1_optimal_threshold,
    fit_detector,
    precision_recall_f1,
    sequences_with_context,
)
from behaviorlab.models.anomaly_injection import ContextSequence
from behaviorlab.models.registry import create_model


@pytest.fixture(scope="module")
def home(make_home_log):
    return split_logs(make_home_log())


def test_precision_recall_f1_by_hand():
    labels = np.array([True, True, False, False, True])
    flagged = np.array([True, False, True, False, True])
    precision, recall, f1 = precision_recall_f1(labels, flagged)
    assert precision == pytest.approx(2 / 3) and recall == pytest.approx(2 / 3) and f1 == pytest.approx(2 / 3)
    assert precision_recall_f1(labels, np.zeros(5, dtype=bool)) == (0.0, 0.0, 0.0)


def test_f1_optimal_threshold_separates_when_it_can():
    scores = np.array([1.0, 2.0, 3.0, 10.0, 11.0])
    labels = np.array([False, False, False, True, True])
    cut = f1_optimal_threshold(scores, labels)
    assert 3.0 < cut < 10.0


def test_first_event_and_context_terms(home):
    train, _, _ = home
    detector = SequenceAnomalyDetector(create_model("markov").fit(train), AnomalyConfig(context_weight=1.0))
    detector.fit_statistics(train)
    normal = ContextSequence("a", ("Light:switch on", "TV:switch on"), ("(18~21)", "(18~21)"))
    odd_hour = ContextSequence("b", ("Light:switch on", "TV:switch on"), ("(18~21)", "(3~6)"))
    s_normal, s_odd = detector.event_surprisals([normal, odd_hour])
    assert s_normal[0] == pytest.approx(s_odd[0])   # same first event, same hour
    assert s_odd[1] > s_normal[1] + 2.0             # TV at 3-6 am was never seen in training
    blind = SequenceAnomalyDetector(detector.model, AnomalyConfig(context_weight=0.0, context_order_weight=0.0))
    blind.fit_statistics(train)
    a, b = blind.event_surprisals([normal, odd_hour])
    assert np.allclose(a, b)                        # without the context term time is invisible


def test_detector_finds_injected_anomalies_on_test(home):
    train, valid, test = home
    detector = fit_detector(create_model("markov"), train, valid, AnomalyConfig())
    report = evaluate_detector(detector, test)
    kinds = {k.kind: k for k in report.per_kind}
    assert set(kinds) == {"unusual_time", "unusual_device", "flood", "impossible_pair"}
    assert report.overall.f1 > 0.8
    for kind in ("unusual_time", "unusual_device", "impossible_pair"):
        assert kinds[kind].recall > 0.8, kind
    assert report.n_normal == 120


def test_context_term_is_what_catches_unusual_times(home):
    train, valid, test = home
    with_time = evaluate_detector(fit_detector(create_model("markov"), train, valid, AnomalyConfig()), test)
    blind_config = AnomalyConfig(context_weight=0.0, context_order_weight=0.0)
    blind = evaluate_detector(fit_detector(create_model("markov"), train, valid, blind_config), test)
    recall = {r.kind: r.recall for r in with_time.per_kind}
    recall_blind = {r.kind: r.recall for r in blind.per_kind}
    assert recall["unusual_time"] > recall_blind["unusual_time"] + 0.5


def test_threshold_comes_from_validation_only(home, monkeypatch):
    """fit_detector never sees test sequences: the threshold is the same whatever the test split holds."""
    train, valid, _ = home
    seen: list[str] = []
    original = SequenceAnomalyDetector.score_sequences

    def spy(self, sequences):
        seen.extend(s.source for s in sequences)
        return original(self, sequences)

    monkeypatch.setattr(SequenceAnomalyDetector, "score_sequences", spy)
    fit_detector(create_model("markov"), train, valid, AnomalyConfig())
    assert seen and all(source.startswith("valid-") for source in seen)


def test_quantile_rule_flags_the_expected_share_of_normal_validation(home):
    train, valid, _ = home
    detector = fit_detector(create_model("markov"), train, valid, AnomalyConfig(threshold_rule="quantile", normal_quantile=0.9))
    normal_scores = detector.score_sequences(sequences_with_context(valid, "hour_bin"))
    assert np.mean(normal_scores > detector.threshold_) <= 0.1 + 1e-9


def test_save_load_round_trip(home, tmp_path):
    train, valid, test = home
    detector = fit_detector(create_model("markov"), train, valid, AnomalyConfig(aggregate="sum"))
    detector.save(tmp_path / "detector")
    loaded = SequenceAnomalyDetector.load(tmp_path / "detector")
    sequences = sequences_with_context(test, "hour_bin")
    assert loaded.threshold_ == detector.threshold_ and loaded.config == detector.config
    assert np.allclose(loaded.score_sequences(sequences), detector.score_sequences(sequences))
    assert evaluate_detector(loaded, test) == evaluate_detector(detector, test)


def test_bad_inputs_are_typed_errors(home):
    train, valid, _ = home
    with pytest.raises(DataError, match="no 'room'"):
        sequences_with_context(train, "room")
    detector = SequenceAnomalyDetector(create_model("markov").fit(train))
    detector.fit_statistics(train)
    only_normal = sequences_with_context(valid, "hour_bin")
    with pytest.raises(EvaluationError, match="normal and anomalous"):
        detector.calibrate(only_normal)
