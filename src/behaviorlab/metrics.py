"""Evaluation metrics for next-behavior prediction, classification and regression.

Ranking metrics take a score matrix [N, V] (higher = more likely; column j = vocabulary.actions[j])
and the target column of each row. The rank of a target counts every other action scored at least
as high (ties go against the model, so constant scores cannot look good). Full ranking over all
actions is the default; sampled negatives are computed only on request, and their keys say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from behaviorlab.errors import EvaluationError

if TYPE_CHECKING:
    from behaviorlab.models.base import NextBehaviorModel
    from behaviorlab.sequences import NextEventExamples


def _checked(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.ndim != 1 or scores.shape[0] != targets.shape[0]:
        raise EvaluationError(f"Expected scores [N, V] and targets [N], got {scores.shape} and {targets.shape}")
    if scores.shape[0] == 0:
        raise EvaluationError("No examples to evaluate", hint="Check that the split produced examples.")
    if targets.min() < 0 or targets.max() >= scores.shape[1]:
        raise EvaluationError(f"Target columns must lie in 0..{scores.shape[1] - 1}")
    return scores, targets


def target_ranks(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> np.ndarray:
    """int64 [N]: 0-based rank of each target = how many other columns score at least as high."""
    scores, targets = _checked(scores, targets)
    target_scores = scores[np.arange(len(targets)), targets][:, None]  # [N, 1]
    return (scores >= target_scores).sum(axis=1).astype(np.int64) - 1


def _check_k(k: int) -> None:
    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}")


def hit_rate_at_k(scores: np.ndarray, targets: Sequence[int] | np.ndarray, k: int) -> float:
    """Share of examples whose target is among the top k."""
    _check_k(k)
    return float((target_ranks(scores, targets) < k).mean())


def ndcg_at_k(scores: np.ndarray, targets: Sequence[int] | np.ndarray, k: int) -> float:
    """One relevant action per example: 1 / log2(rank + 2) when rank < k, else 0 (ideal DCG is 1)."""
    _check_k(k)
    ranks = target_ranks(scores, targets)
    return float(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0).mean())


def mrr(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """Mean reciprocal rank over the full ranking."""
    return float((1.0 / (target_ranks(scores, targets) + 1.0)).mean())


def mrr_at_k(scores: np.ndarray, targets: Sequence[int] | np.ndarray, k: int) -> float:
    """Reciprocal rank, counted as 0 when the target is outside the top k (RecBole's MRR@K)."""
    _check_k(k)
    ranks = target_ranks(scores, targets)
    return float(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0).mean())


def accuracy(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """Share of examples whose single prediction (the arg-max column) is the target."""
    scores, targets = _checked(scores, targets)
    return float((scores.argmax(axis=1) == targets).mean())


def macro_recall(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> float:
    """Recall of the arg-max prediction per target class, averaged over the classes that occur."""
    scores, targets = _checked(scores, targets)
    correct = scores.argmax(axis=1) == targets
    classes = np.unique(targets)
    return float(np.mean([correct[targets == c].mean() for c in classes]))


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: P(a random positive scores above a random negative), ties count 1/2."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise EvaluationError(f"Expected labels and scores of the same 1-D shape, got {labels.shape} and {scores.shape}")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise EvaluationError("AUC needs at least one positive and one negative example")
    # Mann-Whitney U from average ranks (ties share the mean of their ranks).
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _regression_inputs(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> np.ndarray:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise EvaluationError(f"Expected two non-empty arrays of the same shape, got {y_true.shape} and {y_pred.shape}")
    return y_pred - y_true


def mae(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    return float(np.abs(_regression_inputs(y_true, y_pred)).mean())


def rmse(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> float:
    return float(np.sqrt((_regression_inputs(y_true, y_pred) ** 2).mean()))


def sampled_candidates(scores: np.ndarray, targets: Sequence[int] | np.ndarray, negatives: int,
                       seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Restrict each row to its target plus `negatives` other columns drawn uniformly (seeded).

    Returns scores [N, 1 + negatives] with the target in column 0, and targets (all 0).
    """
    scores, targets = _checked(scores, targets)
    n, v = scores.shape
    if not 1 <= negatives <= v - 1:
        raise EvaluationError(f"negatives must be between 1 and {v - 1}, got {negatives}")
    rng = np.random.default_rng(seed)
    # Draw from the V-1 non-target columns: sample in 0..V-2, then skip over the target column.
    drawn = np.stack([rng.choice(v - 1, size=negatives, replace=False) for _ in range(n)])  # [N, negatives]
    drawn = drawn + (drawn >= targets[:, None])
    columns = np.concatenate([targets[:, None], drawn], axis=1)  # [N, 1 + negatives]
    return np.take_along_axis(scores, columns, axis=1), np.zeros(n, dtype=np.int64)


def ranking_metrics(scores: np.ndarray, targets: Sequence[int] | np.ndarray, ks: Iterable[int] = (1, 5, 10),
                    *, negatives: int | None = None, seed: int = 0) -> dict[str, float]:
    """HR@K, NDCG@K, MRR@K for each K, MRR, accuracy and macro recall, plus the example count.

    With `negatives`, ranking is among the target and that many sampled actions, and every key
    carries the suffix " (sampled N)" so such numbers are never mistaken for full ranking.
    """
    scores, targets = _checked(scores, targets)
    report: dict[str, float] = {}
    if negatives is None:
        suffix = ""
        report["accuracy"] = accuracy(scores, targets)
        report["macro_recall"] = macro_recall(scores, targets)
    else:
        scores, targets = sampled_candidates(scores, targets, negatives, seed)
        suffix = f" (sampled {negatives})"
    for k in ks:
        report[f"HR@{k}{suffix}"] = hit_rate_at_k(scores, targets, k)
        report[f"NDCG@{k}{suffix}"] = ndcg_at_k(scores, targets, k)
        report[f"MRR@{k}{suffix}"] = mrr_at_k(scores, targets, k)
    report[f"MRR{suffix}"] = mrr(scores, targets)
    report["examples"] = float(len(targets))
    return report


def target_columns(model: NextBehaviorModel, examples: NextEventExamples) -> np.ndarray:
    """int64 [N]: each target's score column in `model`'s vocabulary; unknown targets are an error."""
    vocabulary = model.vocabulary
    unknown = sorted({t for t in examples.targets if t not in vocabulary})
    if unknown:
        raise EvaluationError(f"{len(unknown)} target actions are not in the model's vocabulary: {unknown[:10]}",
                              hint="Train the model with the domain's full vocabulary.")
    return np.asarray(vocabulary.columns_of(examples.targets), dtype=np.int64)


def ranking_report(model: NextBehaviorModel, examples: NextEventExamples, ks: Iterable[int] = (1, 5, 10),
                   *, negatives: int | None = None, seed: int = 0) -> dict[str, float]:
    """`ranking_metrics` of a fitted model on prediction examples (full ranking unless `negatives`)."""
    return ranking_metrics(model.predict_scores(examples), target_columns(model, examples), ks,
                           negatives=negatives, seed=seed)


def mean_and_std(runs: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Per metric, the mean and sample standard deviation over runs (e.g. seeds); std is 0 for one run."""
    if not runs:
        raise EvaluationError("No runs to summarise")
    keys = [k for k in runs[0] if all(k in run for run in runs)]
    summary = {}
    for key in keys:
        values = np.asarray([run[key] for run in runs], dtype=np.float64)
        summary[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    return summary
