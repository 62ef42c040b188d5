"""The CTR task's pooled AUC: each target against sampled other columns, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from behaviorlab.evaluate.ctr import pooled_auc


def test_pooled_auc_is_one_when_every_target_outscores_every_other_column() -> None:
    scores = np.array([[5.0, 1.0, 2.0, 0.0], [0.0, 3.0, 9.0, 1.0]])
    assert pooled_auc(scores, np.array([0, 2]), negatives=3, seed=0) == pytest.approx(1.0)
    assert pooled_auc(-scores, np.array([0, 2]), negatives=3, seed=0) == pytest.approx(0.0)


def test_pooled_auc_pools_the_rows_and_ties_count_half() -> None:
    # all three negatives of each row are drawn (V - 1 = 3): row 0's target beats all, row 1's target ties all
    scores = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert pooled_auc(scores, np.array([0, 0]), negatives=3, seed=0) == pytest.approx((3 + 1.5) / 6)
