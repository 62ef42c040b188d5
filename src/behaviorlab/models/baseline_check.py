"""A sequence model's fit read against the Markov model, and why a model fell short of it.

The Markov model (markov.py) is the cheap baseline a neural sequence model should at least match: it is
fitted on the same training log and scored on the same validation examples, by the same NDCG@10 that chose
the model's best epoch. When the model scores below it, the run's history (the training record: a score and
a loss per epoch, what stopped it) names the likely cause, so the log says why, with the settings to change:

- ended by its time budget or epoch cap before patience judged it done: undertrained;
- fewer than FEW_VALIDATION_EXAMPLES validation examples: the gap may be noise;
- the score peaked early and fell while the training loss kept falling: overfitting;
- the score stayed flat from epoch 1: the learning rate;
- it scores about what the popularity model does (fitted only then): it has learned which actions are
  common, not what follows what (GRU4Rec on Foursquare NYC with the shipped settings: HR@1 and HR@10
  exactly the popularity model's, in 8 optimiser steps an epoch); more optimiser steps;
- none of these: said plainly.

neural.py runs it after every fit with validation examples, unless NeuralConfig.markov_baseline is off.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from behaviorlab.models.markov import MarkovModel
from behaviorlab.models.popularity import PopularityModel
from behaviorlab.models.training import FEW_VALIDATION_EXAMPLES

if TYPE_CHECKING:
    from behaviorlab.models.base import SequenceModel
    from behaviorlab.models.training import NeuralConfig, TrainingRecord
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

METRIC = "NDCG@10"  # what the sequence models' validation scores
RECORD_KEY = "valid_ndcg10"  # its name in the training record's epochs
DECLINE = 0.05  # a last score this fraction below the best one is a decline, not noise around a plateau
FLAT = 0.05  # scores whose range is within this fraction of the best one never rose: a flat run
NO_CAUSE = ("no sign in the run's history explains it (patience ended it, on enough validation examples, after a rise "
            "and without a clear decline): on this data the Markov model's short context may simply fit better; "
            "use the markov model, or try a shorter max_len")
POPULARITY_LEVEL = 0.05  # a score within this fraction of the popularity model's is popularity's level
STILL_LOSS = 0.05  # a training loss that fell by less than this fraction over the run barely moved


def validation_score(model: SequenceModel, valid: NextEventExamples) -> float:
    """NDCG@10 of a fitted model over the validation examples (full ranking, scored in blocks)."""
    from behaviorlab.metrics import example_ranks, metrics_of_ranks

    return metrics_of_ranks(example_ranks(model, valid), (10,))[METRIC]


def markov_baseline(train: EventLog, valid: NextEventExamples) -> tuple[float, float]:
    """(validation NDCG@10, seconds to fit and score it) of the default Markov model fitted on `train`."""
    started = time.perf_counter()
    score = validation_score(MarkovModel().fit(train), valid)
    return score, time.perf_counter() - started


def popularity_score(train: EventLog, valid: NextEventExamples) -> float:
    """Validation NDCG@10 of the popularity model fitted on `train` (the level of a model that ignores history)."""
    return validation_score(PopularityModel().fit(train), valid)


def shortfall(model: str, score: float, record: TrainingRecord, config: NeuralConfig, examples: int,
              steps_per_epoch: int) -> str | None:
    """The warning for a model whose validation `score` is below the record's baseline; None when it is not."""
    baseline, popularity = record.baseline_valid, record.popularity_valid
    if baseline is None or score >= baseline:
        return None
    causes = _causes(record, config, examples)
    if popularity is not None and record.epoch and abs(score - popularity) <= POPULARITY_LEVEL * popularity:
        causes.append(f"it scores about what the popularity model does ({METRIC} {popularity:.4f}): it has learned "
                      f"which actions are common, not yet what follows what, in {record.epoch * steps_per_epoch:,} "
                      f"optimiser steps ({steps_per_epoch:,} an epoch); give it more steps: a smaller batch_size "
                      f"(now {config.batch_size}) or a larger learning_rate (now {config.learning_rate:g})")
    causes = causes or [NO_CAUSE]
    return (f"{model}'s validation {METRIC} ({score:.4f}) is below the Markov model's ({baseline:.4f}) on the same "
            f"examples: {'; '.join(causes)}")


def _causes(record: TrainingRecord, config: NeuralConfig, examples: int) -> list[str]:
    """What the run's history says about a score below the baseline, each cause with what to change."""
    causes = []
    if record.epoch == 0:
        causes.append("the time budget ended it inside epoch 1: give it a larger --time-budget (or --resume)")
    elif not record.patience_ran_out(config):
        ended = "time budget" if record.stopped_by_time else f"epoch cap ({config.epochs})"
        causes.append(f"its {ended} ended it at epoch {record.epoch}, {record.epochs_without_gain} after its best "
                      f"(epoch {record.best_epoch}), before patience judged it done: it may be undertrained; give it "
                      "a larger --time-budget or more --epochs")
    if examples < FEW_VALIDATION_EXAMPLES:
        causes.append(f"only {examples} validation examples: one moves {METRIC} by up to {1 / examples:.2f}, so the "
                      "gap may be noise; a split with more validation examples tells")
    scores = [entry[RECORD_KEY] for entry in record.epochs]
    losses = [entry["loss"] for entry in record.epochs]
    if len(scores) < 2 or not record.patience_ran_out(config):
        return causes
    best = scores[record.best_epoch - 1]
    if max(scores) - min(scores) <= FLAT * max(best, 1e-12):
        causes.append(_flat(scores, losses, config))
    elif scores[-1] < (1 - DECLINE) * best and losses[-1] < losses[record.best_epoch - 1] \
            and record.best_epoch <= len(scores) / 2:
        causes.append(_overfitting(record, scores, losses, config))
    return causes


def _flat(scores: list[float], losses: list[float], config: NeuralConfig) -> str:
    rate = config.learning_rate
    still = losses[-1] > (1 - STILL_LOSS) * losses[0]
    if still:
        advice = f"the training loss barely fell ({losses[0]:.3f} to {losses[-1]:.3f}): try learning_rate {3 * rate:g}"
    else:
        advice = f"try learning_rate {rate / 3:g} and {3 * rate:g}"
    return (f"its validation {METRIC} stayed flat from epoch 1 ({min(scores):.4f} to {max(scores):.4f} over "
            f"{len(scores)} epochs): the learning rate ({rate:g}) may not suit this data; {advice}")


def _overfitting(record: TrainingRecord, scores: list[float], losses: list[float], config: NeuralConfig) -> str:
    best = record.best_epoch
    decay = f"{config.weight_decay * 10:g}" if config.weight_decay else "1e-4"
    smaller = max(2, config.embedding_dim // 2)
    return (f"it peaked at epoch {best} of {len(scores)} ({METRIC} {scores[best - 1]:.4f}) and declined to "
            f"{scores[-1]:.4f} while the training loss kept falling ({losses[best - 1]:.3f} to {losses[-1]:.3f}): "
            f"overfitting; try dropout {min(0.8, round(config.dropout + 0.2, 2)):g} (now {config.dropout:g}), "
            f"weight_decay {decay} (now {config.weight_decay:g}) or embedding_dim {smaller} (now {config.embedding_dim})")
