"""Evaluation metrics for next-behavior prediction, classification and regression.

Ranking metrics take a score matrix [N, V] (higher = more likely; column j = vocabulary.actions[j])
and the target column of each row. The rank of a target counts every other action scored at least
as high (ties go against the model, so constant scores cannot look good). Full ranking over all
actions is the default; sampled negatives are computed only on request, and their keys say so.
A model's report (`ranking_report`) scores its examples in blocks and keeps only per-example ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from behaviorlab.errors import EvaluationError

if TYPE_CHECKING:
    from behaviorlab.schema import Vocabulary
    from behaviorlab.sequences import NextEventExamples


class ScoringModel(Protocol):
    """What the model reports need of a fitted model (every `models.base.NextBehaviorModel` is one): metrics
    sits above `models`, so it names the two members it calls instead of importing the model classes."""

    @property
    def vocabulary(self) -> Vocabulary: ...

    def predict_scores(self, examples: NextEventExamples) -> np.ndarray: ...


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
                       seed: int | np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Restrict each row to its target plus `negatives` other columns drawn uniformly (seeded).

    Returns scores [N, 1 + negatives] with the target in column 0, and targets (all 0). Rows draw in
    order from one generator, so scoring row blocks one after another with the same generator draws
    what one call on all rows draws.
    """
    scores, targets = _checked(scores, targets)
    n, v = scores.shape
    if not 1 <= negatives <= v - 1:
        raise EvaluationError(f"negatives must be between 1 and {v - 1}, got {negatives}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # Draw from the V-1 non-target columns: sample in 0..V-2, then skip over the target column.
    drawn = np.stack([rng.choice(v - 1, size=negatives, replace=False) for _ in range(n)])  # [N, negatives]
    drawn = drawn + (drawn >= targets[:, None])
    columns = np.concatenate([targets[:, None], drawn], axis=1)  # [N, 1 + negatives]
    return np.take_along_axis(scores, columns, axis=1), np.zeros(n, dtype=np.int64)


@dataclass(frozen=True)
class Ranks:
    """What every ranking metric reads, per example: the target's 0-based rank among all actions, the
    arg-max column, the target column, and (with sampled negatives) its rank among its candidates."""

    full: np.ndarray  # int64 [N]
    predicted: np.ndarray  # int64 [N]
    targets: np.ndarray  # int64 [N]
    sampled: np.ndarray | None = None  # int64 [N]

    @classmethod
    def of(cls, scores: np.ndarray, targets: Sequence[int] | np.ndarray, negatives: int | None = None,
           rng: np.random.Generator | None = None) -> Ranks:
        """The ranks of one block of rows: scores [N, V], targets [N]; `rng` draws the sampled negatives."""
        scores, targets = _checked(scores, targets)
        sampled = None
        if negatives is not None:
            candidates, zeros = sampled_candidates(scores, targets, negatives, rng if rng is not None else 0)
            sampled = target_ranks(candidates, zeros)
        return cls(target_ranks(scores, targets), scores.argmax(axis=1), targets, sampled)

    @classmethod
    def concat(cls, parts: Sequence[Ranks]) -> Ranks:
        sampled = [p.sampled for p in parts]
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("full", "predicted", "targets")),
                   None if any(s is None for s in sampled) else np.concatenate(sampled))  # type: ignore[arg-type]


def _from_ranks(ranks: np.ndarray, ks: Iterable[int], suffix: str) -> dict[str, float]:
    report: dict[str, float] = {}
    for k in ks:
        _check_k(k)
        report[f"HR@{k}{suffix}"] = float((ranks < k).mean())
        report[f"NDCG@{k}{suffix}"] = float(np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        report[f"MRR@{k}{suffix}"] = float(np.where(ranks < k, 1.0 / (ranks + 1.0), 0.0).mean())
    report[f"MRR{suffix}"] = float((1.0 / (ranks + 1.0)).mean())
    return report


def metrics_of_ranks(ranks: Ranks, ks: Iterable[int] = (1, 5, 10), *, negatives: int | None = None) -> dict[str, float]:
    """The report of `ranking_metrics` from ranks (see there)."""
    if negatives is None:
        correct = ranks.predicted == ranks.targets
        report = {"accuracy": float(correct.mean()),
                  "macro_recall": float(np.mean([correct[ranks.targets == c].mean() for c in np.unique(ranks.targets)]))}
        report |= _from_ranks(ranks.full, ks, "")
    else:
        if ranks.sampled is None:
            raise EvaluationError("These ranks were computed without sampled negatives")
        report = _from_ranks(ranks.sampled, ks, f" (sampled {negatives})")
    report["examples"] = float(len(ranks.targets))
    return report


def ranking_metrics(scores: np.ndarray, targets: Sequence[int] | np.ndarray, ks: Iterable[int] = (1, 5, 10),
                    *, negatives: int | None = None, seed: int = 0) -> dict[str, float]:
    """HR@K, NDCG@K, MRR@K for each K, MRR, accuracy and macro recall, plus the example count.

    With `negatives`, ranking is among the target and that many sampled actions, and every key
    carries the suffix " (sampled N)" so such numbers are never mistaken for full ranking.
    """
    return metrics_of_ranks(Ranks.of(scores, targets, negatives, np.random.default_rng(seed)), ks, negatives=negatives)


def target_columns(model: ScoringModel, examples: NextEventExamples) -> np.ndarray:
    """int64 [N]: each target's score column in `model`'s vocabulary; unknown targets are an error."""
    vocabulary = model.vocabulary
    unknown = sorted({t for t in examples.targets if t not in vocabulary})
    if unknown:
        raise EvaluationError(f"{len(unknown)} target actions are not in the model's vocabulary: {unknown[:10]}",
                              hint="Train the model with the domain's full vocabulary.")
    return np.asarray(vocabulary.columns_of(examples.targets), dtype=np.int64)


# Score matrices are built this many cells (examples x actions) at a time, so evaluating N examples over
# V actions holds O(CHUNK_CELLS) floats, not O(N x V): 22k users x 12k items would be 1 GB of float32.
CHUNK_CELLS = 1 << 23


def chunk_rows(n_actions: int, cells: int = CHUNK_CELLS) -> int:
    """How many examples one score block holds."""
    return max(1, cells // max(n_actions, 1))


def example_ranks(model: ScoringModel, examples: NextEventExamples, *, negatives: int | None = None,
                  seed: int = 0, cells: int = CHUNK_CELLS) -> Ranks:
    """The ranks of a fitted model's targets over `examples`, scored in blocks of examples (exact: the
    same ranks and sampled negatives as scoring every example at once)."""
    targets = target_columns(model, examples)
    if not len(targets):
        raise EvaluationError("No examples to evaluate", hint="Check that the split produced examples.")
    rng = np.random.default_rng(seed)
    step = chunk_rows(len(model.vocabulary), cells)
    parts = []
    for start in range(0, len(targets), step):
        block = range(start, min(start + step, len(targets)))
        parts.append(Ranks.of(model.predict_scores(examples.take(block)), targets[start:block.stop], negatives, rng))
    return Ranks.concat(parts)


def ranking_report(model: ScoringModel, examples: NextEventExamples, ks: Iterable[int] = (1, 5, 10),
                   *, negatives: int | None = None, seed: int = 0, cells: int = CHUNK_CELLS) -> dict[str, float]:
    """`ranking_metrics` of a fitted model on prediction examples (full ranking unless `negatives`),
    computed in blocks of at most `cells` scores, so memory does not grow with examples x actions."""
    return metrics_of_ranks(example_ranks(model, examples, negatives=negatives, seed=seed, cells=cells), ks,
                            negatives=negatives)


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
