import numpy as np
import pytest

from behaviorlab.errors import ConfigError
from behaviorlab.profiles.privacy import laplace_counts


def test_noise_has_the_laplace_scale_and_counts_stay_non_negative():
    counts = np.full(20000, 50.0)
    noisy = laplace_counts(counts, epsilon=0.5, sensitivity=2.0, rng=np.random.default_rng(0))
    # Laplace(b) has mean absolute deviation b = sensitivity / epsilon = 4
    assert abs(np.mean(np.abs(noisy - counts)) - 4.0) < 0.15
    assert (laplace_counts(np.zeros(100), 0.1, 1.0, np.random.default_rng(1)) >= 0).all()


def test_no_epsilon_means_exact_counts_and_bad_epsilon_is_an_error():
    counts = np.array([3.0, 0.0, 7.0])
    assert laplace_counts(counts, None, 1.0, np.random.default_rng(0)).tolist() == [3.0, 0.0, 7.0]
    with pytest.raises(ConfigError):
        laplace_counts(counts, 0.0, 1.0, np.random.default_rng(0))
