"""Optional differential privacy for the count tables taken from real data (Laplace mechanism).

Counts are released per stratum; every real user belongs to exactly one stratum and contributes at
most `contribution_bound` events to a table, so each table is an epsilon-DP release (parallel
composition over disjoint strata) and the run's total epsilon is the sum over the tables it releases.
"""

from __future__ import annotations

import numpy as np

from behaviorlab.errors import ConfigError


def laplace_counts(counts: np.ndarray, epsilon: float | None, sensitivity: float, rng: np.random.Generator) -> np.ndarray:
    """`counts` plus Laplace(sensitivity / epsilon) noise, clipped at zero; unchanged when epsilon is None.

    Clipping is post-processing, so it keeps the guarantee.
    """
    counts = np.asarray(counts, dtype=float)
    if epsilon is None:
        return counts
    if epsilon <= 0:
        raise ConfigError(f"dp_epsilon must be positive, got {epsilon}", hint="Use e.g. 1.0, or leave it unset for no noise.")
    noise = rng.laplace(0.0, sensitivity / epsilon, size=counts.shape)
    return np.clip(counts + noise, 0.0, None)
