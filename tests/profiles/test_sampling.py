from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from behaviorlab.profiles.atus import load_atus_priors
from behaviorlab.profiles.diversity import attribute_entropy, grounding_coverage
from behaviorlab.profiles.infer import infer_profile
from behaviorlab.profiles.realstats import estimate_real_priors
from behaviorlab.profiles.sampling import PopulationConfig, sample_population, sample_profile, sharpen
from behaviorlab.schema import EventLog, Schema

ROUTINES = (("tv on", "channel", "tv off"), ("light on", "dim", "light off"), ("unlock", "open", "lock"))


def routine_log(n_users: int = 45, length: int = 6) -> EventLog:
    """User u repeats routine u % 3 (one action of it swapped per user), at timestamps one hour apart."""
    rows = {"user_id": [], "timestamp": [], "action": []}
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    for u in range(n_users):
        routine = list(ROUTINES[u % 3])
        for p in range(length):
            rows["user_id"].append(f"u{u:03d}")
            rows["timestamp"].append(start + timedelta(days=u, hours=p))
            rows["action"].append(routine[p % 3] if p != u % length else ROUTINES[(u + 1) % 3][0])
    schema = Schema(name="routines", domain="activity")
    return EventLog(pl.DataFrame(rows, schema=schema.dtypes()), schema)


@pytest.fixture(scope="module")
def priors():
    return estimate_real_priors(routine_log(), episode_length=6, n_strata=3, seed=0)


def test_sharpen_goes_from_argmax_to_uniform():
    weights = np.array([6.0, 3.0, 1.0])
    assert sharpen(weights, 0.0).tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_allclose(sharpen(weights, 0.5), weights / 10)
    np.testing.assert_allclose(sharpen(weights, 1.0), [1 / 3] * 3)


def test_strata_follow_the_behavior_patterns(priors):
    # three routines (tv, light, door) in the fixture -> three strata of 15 users each
    assert sorted(np.bincount(priors.strata).tolist()) == [15, 15, 15]
    first = priors.users.index("u000")
    neighbours = priors.neighbours(first, 5)
    assert neighbours[0] == first
    assert all(priors.strata[n] == priors.strata[first] for n in neighbours)


def test_diversity_measures_increase_with_the_knob(priors):
    atus = load_atus_priors()
    measured = []
    for diversity in (0.0, 0.5, 1.0):
        population = sample_population(priors, atus, PopulationConfig(n_profiles=60, diversity=diversity, n_neighbours=3))
        measured.append((attribute_entropy(population), grounding_coverage(population, priors)))
    entropies, coverages = zip(*measured, strict=True)
    assert entropies[0] == 0.0 and entropies[0] < entropies[1] < entropies[2]
    assert coverages[0] < coverages[1] <= coverages[2]


def test_profiles_are_functions_of_seed_and_index(priors):
    atus = load_atus_priors()
    small = PopulationConfig(n_profiles=3, seed=4)
    large = PopulationConfig(n_profiles=50, seed=4)
    assert sample_profile(2, priors, atus, small) == sample_profile(2, priors, atus, large)
    assert sample_profile(2, priors, atus, small) != sample_profile(2, priors, atus, PopulationConfig(seed=5))


def test_inferred_profile_summarises_the_user(priors):
    user = priors.users.index("u000")
    profile = infer_profile(priors, user, "real-u000", n_neighbours=4)
    counts = priors.counts[user]
    assert profile.source == "inferred" and profile.neighbours[0] == "u000"
    assert profile.preferred_actions[0] == priors.actions[int(np.argmax(counts))]
    assert profile.active_hours and all(0 <= h <= 23 for h in profile.active_hours)
