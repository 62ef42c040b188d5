"""Utility of synthetic data for next-behavior prediction: TSTR and BehaviorGen's training scenarios.

Each scenario trains one fresh model; validation examples (real) steer early stopping in every stage,
and the caller scores the finished model on the real test examples once. The two-stage scenarios get a
second round of optimisation (a fresh optimiser on a warm model), which can help by itself when one
early-stopped stage has not converged; `real_continued` measures that effect without synthetic data.

- real_only:         fit on real                                   (the reference; TRTR)
- real_continued:    fit on real, then continue on real again      (control: a second stage, no synthetic data)
- synthetic_only:    fit on synthetic                              (TSTR: train synthetic, test real)
- pretrain_augment:  fit on synthetic, then continue on real       (pretraining augmentation)
- finetune_replace:  fit on real, then continue on synthetic only  (fine-tuning replacement)
- finetune_augment:  fit on real, then continue on real + synthetic (fine-tuning augmentation)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import polars as pl

from behaviorlab.errors import EvaluationError, Problem
from behaviorlab.models.base import NextBehaviorModel
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import ACTION, USER, EventLog
from behaviorlab.sequences import NextEventExamples

# How a cell trains (BehaviorGen's training scenarios); not to be confused with generate.scenario.Scenario,
# the environment change a generation run is told about.
TrainingScenario = Literal["real_only", "real_continued", "synthetic_only", "pretrain_augment", "finetune_replace",
                           "finetune_augment"]
TRAINING_SCENARIOS: tuple[TrainingScenario, ...] = ("real_only", "real_continued", "synthetic_only", "pretrain_augment",
                                                    "finetune_replace", "finetune_augment")
REAL_ONLY_SCENARIOS: tuple[TrainingScenario, ...] = ("real_only", "real_continued")  # no synthetic data involved
ModelFactory = Callable[[], NextBehaviorModel]


def align_synthetic(synthetic: EventLog, real: EventLog, user_prefix: str = "syn-") -> EventLog:
    """`synthetic` re-expressed in `real`'s schema and vocabulary, so the two can be combined and a model
    fitted on one can continue on the other: extras the real log lacks are dropped, extras the synthetic
    log lacks are null, and user ids get a prefix so they never collide with real ones."""
    problems = []
    if synthetic.time_column != real.time_column:
        problems.append(Problem(f"synthetic time column is '{synthetic.time_column}', real is '{real.time_column}'"))
    unknown = sorted(set(synthetic.frame.get_column(ACTION).unique().to_list()) - set(real.vocabulary.actions))
    problems += [Problem(f"action {a!r} is not in the real vocabulary", column=ACTION) for a in unknown]
    if problems:
        raise EvaluationError(
            "The synthetic log cannot be combined with the real one:\n" + "\n".join(f"  - {p}" for p in problems),
            hint="Generate from the same dataset (same time kind and action vocabulary).")
    dtypes = real.schema.dtypes()
    frame = synthetic.frame.with_columns((pl.lit(user_prefix) + pl.col(USER)).alias(USER))
    frame = frame.select([
        pl.col(c).cast(dtype) if c in frame.columns else pl.lit(None, dtype=dtype).alias(c)
        for c, dtype in dtypes.items()
    ])
    return EventLog(frame, real.schema, real.vocabulary)


def combine(real: EventLog, synthetic: EventLog) -> EventLog:
    """Real and (aligned) synthetic events in one log."""
    return real.with_frame(pl.concat([real.frame, synthetic.frame], how="vertical"))


STARTS_FROM_REAL: tuple[TrainingScenario, ...] = ("real_only", "real_continued", "finetune_replace", "finetune_augment")


def train_scenario(scenario: TrainingScenario, make_model: ModelFactory, real: EventLog, synthetic: EventLog | None,
                   valid: NextEventExamples, progress: ProgressReporter | None = None, *,
                   fitted_on_real: NextBehaviorModel | None = None) -> NextBehaviorModel:
    """A model trained as `scenario` says; `synthetic` must already be aligned to `real`.

    For the scenarios in STARTS_FROM_REAL, `fitted_on_real` may hand over a model that `make_model()` would
    give after `fit(real, valid)` (a copy: it is trained further), so a grid fits each real subset once.
    """
    if scenario not in TRAINING_SCENARIOS:
        raise EvaluationError(f"Unknown scenario {scenario!r}", hint=f"Choose from {', '.join(TRAINING_SCENARIOS)}.")
    if scenario not in REAL_ONLY_SCENARIOS and synthetic is None:
        raise EvaluationError(f"Scenario {scenario!r} needs synthetic data")
    if scenario in STARTS_FROM_REAL:
        model = fitted_on_real if fitted_on_real is not None else make_model().fit(real, valid, progress=progress)
        if scenario == "real_only":
            return model
        if scenario == "real_continued":
            return model.fit(real, valid, warm_start=True, progress=progress)
        assert synthetic is not None  # checked above; narrows the type
        continued = synthetic if scenario == "finetune_replace" else combine(real, synthetic)
        return model.fit(continued, valid, warm_start=True, progress=progress)
    assert synthetic is not None
    model = make_model().fit(synthetic, valid, progress=progress)
    if scenario == "synthetic_only":
        return model
    return model.fit(real, valid, warm_start=True, progress=progress)  # pretrain_augment


def check_scenarios(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in TRAINING_SCENARIOS]
    if unknown:
        raise EvaluationError(f"Unknown scenarios {unknown}", hint=f"Choose from {', '.join(TRAINING_SCENARIOS)}.")
