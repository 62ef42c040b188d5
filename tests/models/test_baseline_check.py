"""A sequence model below the Markov baseline gets a warning naming the cause the run's history shows
(undertrained, few validation examples, overfitting, a flat start, or none of these, said plainly); a fit
records the baseline unless the config turns it off."""

from __future__ import annotations

import pytest

from behaviorlab.models.baseline_check import NO_CAUSE, shortfall
from behaviorlab.models.recurrent import RecurrentConfig
from behaviorlab.models.training import TrainingRecord

CONFIG = RecurrentConfig(patience=3, patience_fraction=0.0, epochs=50, dropout=0.2, embedding_dim=64, learning_rate=1e-3)


def record_of(scores: list[float], losses: list[float], *, stopped_by_time: bool = False) -> TrainingRecord:
    """The record a run with these per-epoch validation scores and training losses leaves (baseline 0.5)."""
    record = TrainingRecord(baseline_valid=0.5, stopped_by_time=stopped_by_time)
    for epoch, (score, loss) in enumerate(zip(scores, losses, strict=True), start=1):
        record.epochs.append({"epoch": epoch, "loss": loss, "valid_ndcg10": score})
        if record.best_valid is None or score >= record.best_valid:
            record.epochs_without_gain = 0 if record.best_valid is None or score > record.best_valid \
                else record.epochs_without_gain + 1
            record.best_epoch, record.best_valid = epoch, score
        else:
            record.epochs_without_gain += 1
    return record


def warning(record: TrainingRecord, examples: int = 500, config: RecurrentConfig = CONFIG) -> str | None:
    return shortfall("gru4rec", record.best_valid if record.best_valid is not None else 0.1, record, config, examples, 8)


def test_no_warning_at_or_above_the_baseline_or_without_one():
    assert warning(record_of([0.3, 0.5, 0.5, 0.5, 0.5], [3.0, 2.5, 2.4, 2.3, 2.2])) is None  # equal is enough
    assert warning(TrainingRecord(best_valid=0.1, epochs=[{"loss": 1.0, "valid_ndcg10": 0.1}])) is None


def test_overfitting_names_the_settings_to_change():
    text = warning(record_of([0.30, 0.40, 0.35, 0.32, 0.30], [3.0, 2.5, 2.0, 1.6, 1.2]))
    assert text.startswith("gru4rec's validation NDCG@10 (0.4000) is below the Markov model's (0.5000) on the same "
                           "examples: it peaked at epoch 2 of 5 (NDCG@10 0.4000) and declined to 0.3000 while the "
                           "training loss kept falling (2.500 to 1.200): overfitting")
    assert "dropout 0.4 (now 0.2), weight_decay 1e-4 (now 0) or embedding_dim 32 (now 64)" in text


def test_a_flat_run_points_at_the_learning_rate():
    still = warning(record_of([0.200, 0.201, 0.199, 0.200, 0.200], [3.00, 2.99, 2.99, 2.98, 2.98]))
    assert "stayed flat from epoch 1 (0.1990 to 0.2010 over 5 epochs)" in still
    assert "the training loss barely fell (3.000 to 2.980): try learning_rate 0.003" in still
    moving = warning(record_of([0.200, 0.201, 0.199, 0.200, 0.200], [3.0, 2.5, 2.0, 1.5, 1.0]))
    assert "try learning_rate 0.000333333 and 0.003" in moving


def test_a_run_ended_before_patience_is_undertrained():
    rising = record_of([0.1, 0.2, 0.3], [3.0, 2.5, 2.0], stopped_by_time=True)
    assert "its time budget ended it at epoch 3, 0 after its best (epoch 3), before patience judged it done: it may " \
           "be undertrained" in warning(rising)
    capped = RecurrentConfig(epochs=3, patience=3, patience_fraction=0.0)
    assert "its epoch cap (3) ended it at epoch 3" in warning(record_of([0.1, 0.2, 0.3], [3.0, 2.5, 2.0]), config=capped)
    never = TrainingRecord(baseline_valid=0.5, stopped_by_time=True)  # the budget ran out inside epoch 1
    assert "the time budget ended it inside epoch 1" in shortfall("sasrec", 0.01, never, CONFIG, 500, 8)


def test_few_validation_examples_may_explain_the_gap():
    text = warning(record_of([0.3, 0.4, 0.4, 0.4, 0.4], [3.0, 2.0, 1.9, 1.8, 1.7]), examples=8)
    assert "only 8 validation examples: one moves NDCG@10 by up to 0.12, so the gap may be noise" in text


def test_a_model_at_the_popularity_level_needs_more_optimiser_steps():
    record = record_of([0.10, 0.23, 0.24, 0.24, 0.235, 0.235], [5.0, 4.0, 3.9, 3.9, 3.9, 3.9])
    record.popularity_valid = 0.233
    assert warning(record).endswith(
        "it scores about what the popularity model does (NDCG@10 0.2330): it has learned which actions are common, not "
        "yet what follows what, in 48 optimiser steps (8 an epoch); give it more steps: a smaller batch_size (now 128) "
        "or a larger learning_rate (now 0.001)")
    for popularity in (0.2, 0.3):  # well below or well above the model: not the cause
        record.popularity_valid = popularity
        assert warning(record).endswith(NO_CAUSE)
    never = TrainingRecord(baseline_valid=0.5, popularity_valid=0.01, stopped_by_time=True)  # no epoch finished
    assert "popularity" not in shortfall("sasrec", 0.01, never, CONFIG, 500, 8)


def test_when_nothing_in_the_history_explains_it_the_warning_says_so():
    text = warning(record_of([0.1, 0.2, 0.3, 0.4, 0.39, 0.39, 0.39], [3.0, 2.5, 2.0, 1.9, 1.8, 1.7, 1.6]))
    assert text.endswith(NO_CAUSE)


@pytest.mark.parametrize("compare", [True, False])
def test_a_fit_records_the_markov_baseline_unless_switched_off(chain_log, compare):
    """On a chain Markov fits almost exactly, one epoch of a tiny GRU4Rec is below it: the record holds both scores
    and the warning names the epoch cap; with markov_baseline off there is neither."""
    from behaviorlab.models.markov import MarkovModel
    from behaviorlab.models.recurrent import GRU4RecModel
    from behaviorlab.sequences import make_split

    parts = make_split(chain_log(n_users=60, length=12), "loo")
    config = RecurrentConfig(epochs=1, embedding_dim=8, hidden_size=8, max_len=6, threads=1, device="cpu",
                             markov_baseline=compare)
    record = GRU4RecModel(config).fit(parts.train, parts.valid).training_record_
    if not compare:
        assert record.baseline_valid is None and not any("Markov" in w for w in record.warnings)
        return
    from behaviorlab.models.baseline_check import validation_score

    assert record.baseline_valid == pytest.approx(validation_score(MarkovModel().fit(parts.train), parts.valid))
    assert record.baseline_seconds > 0 and record.best_valid < record.baseline_valid
    assert "is below the Markov model's" in record.warnings[-1] and "its epoch cap (1) ended it" in record.warnings[-1]


def test_the_switch_is_a_typed_config_key():
    from pydantic import ValidationError

    assert RecurrentConfig().markov_baseline is True
    with pytest.raises(ValidationError):
        RecurrentConfig(markov_basline=False)
