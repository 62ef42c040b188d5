"""The time skeleton: every event's weekday and hour bin, sampled in code from real time-of-week counts."""

import numpy as np

from behaviorlab.generate.grounding import NIGHT_WEIGHT, skeleton_slots
from behaviorlab.generate.scenario import Scenario, parse_scenario
from behaviorlab.profiles.episodes import N_BINS
from behaviorlab.profiles.realstats import WEEK_SLOTS, StratumStats
from behaviorlab.schema import Profile

PROFILE = Profile(profile_id="p", routine={"wake": 6.0, "sleep": 24.0})  # awake in bins 2..7, asleep in 0 and 1


def stats(slot_counts: np.ndarray) -> StratumStats:
    return StratumStats(np.zeros(1), np.zeros((1, 1)), slot_counts.astype(float))


def test_slots_are_in_time_order_from_the_first_sampled_day():
    rng = np.random.default_rng(0)
    counts = stats(rng.integers(0, 50, WEEK_SLOTS))
    for _ in range(200):
        slots = skeleton_slots(PROFILE, counts, Scenario(), 10, rng)
        keys = [((s.weekday - slots[0].weekday) % 7, s.hour_bin) for s in slots]
        assert len(slots) == 10 and keys == sorted(keys)


def test_slots_stay_within_the_scenarios_days_and_bins():
    rng = np.random.default_rng(1)
    scenario = parse_scenario(["night", "weekend"])
    slots = [s for _ in range(200) for s in skeleton_slots(PROFILE, stats(np.ones(WEEK_SLOTS)), scenario, 10, rng)]
    assert {s.weekday for s in slots} == {5, 6} and {s.hour_bin for s in slots} == {7, 0, 1}


def test_slots_follow_the_counts_weighted_by_waking_hours():
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 100, WEEK_SLOTS).astype(float)
    counts[3 * N_BINS:4 * N_BINS] = 0.0  # nobody is seen on Thursday: only the +0.5 smoothing is left
    awake = np.array([NIGHT_WEIGHT, NIGHT_WEIGHT, 1, 1, 1, 1, 1, 1])
    expected = ((counts + 0.5).reshape(7, N_BINS) * awake).ravel()
    expected /= expected.sum()
    drawn = np.zeros(WEEK_SLOTS)
    for _ in range(20_000):
        for slot in skeleton_slots(PROFILE, stats(counts), Scenario(), 10, rng):
            drawn[slot.weekday * N_BINS + slot.hour_bin] += 1
    total_variation = 0.5 * np.abs(drawn / drawn.sum() - expected).sum()
    assert total_variation < 0.02
