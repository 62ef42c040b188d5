"""The CTR task's report: AUC of held-out pairs against sampled negatives, and the full-ranking metrics of
each held-out next item, for a fitted `models.ctr.CTRModel`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from behaviorlab.metrics import auc, ranking_metrics, sampled_candidates, target_columns
from behaviorlab.models.ctr import CTRModel
from behaviorlab.sequences import NextEventExamples


def pooled_auc(scores: np.ndarray, targets: np.ndarray, negatives: int, seed: int) -> float:
    """AUC of each row's target column against `negatives` sampled other columns, pooled over rows.

    scores [N, V], targets [N] (column indices); the same seed draws the same negatives for every model."""
    paired, _ = sampled_candidates(scores, targets, negatives, seed)     # [N, 1 + k], the target first
    pooled = np.concatenate([paired[:, 0], paired[:, 1:].reshape(-1)])
    labels = np.concatenate([np.ones(len(paired)), np.zeros(paired[:, 1:].size)])
    return auc(labels, pooled)


def ctr_report(model: CTRModel, examples: NextEventExamples, *, negatives: int = 100, seed: int = 0,
               ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """AUC of held-out click logits (each target against `negatives` sampled other items, pooled over
    examples) and full-ranking metrics of each held-out next item among all items."""
    logits = model.logits(examples.histories)                            # [N, V]
    targets = target_columns(model, examples)                             # [N]
    k = min(negatives, logits.shape[1] - 1)
    return {f"AUC ({k} sampled negatives)": pooled_auc(logits, targets, k, seed), **ranking_metrics(logits, targets, ks)}
