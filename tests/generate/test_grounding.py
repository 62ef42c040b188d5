"""The time skeleton: every event's weekday and hour bin, sampled in code from real time-of-week counts."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from behaviorlab.generate.grounding import MAX_LEGEND, NIGHT_WEIGHT, ground_profile, skeleton_slots
from behaviorlab.generate.scenario import Scenario, parse_scenario
from behaviorlab.profiles.episodes import N_BINS
from behaviorlab.profiles.realstats import WEEK_SLOTS, estimate_real_priors
from behaviorlab.schema import ACTION, TIMESTAMP, USER, EventLog, Profile, Schema, Vocabulary

PROFILE = Profile(profile_id="p", routine={"wake": 6.0, "sleep": 24.0})  # awake in bins 2..7, asleep in 0 and 1


def stats(slot_counts: np.ndarray) -> np.ndarray:
    return slot_counts.astype(float)


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


@pytest.mark.parametrize("routine", [False, True])
def test_slots_follow_the_counts_weighted_by_waking_hours_only_when_asked(routine):
    rng = np.random.default_rng(2)
    counts = rng.integers(0, 100, WEEK_SLOTS).astype(float)
    counts[3 * N_BINS:4 * N_BINS] = 0.0  # nobody is seen on Thursday: only the +0.5 smoothing is left
    awake = np.array([NIGHT_WEIGHT, NIGHT_WEIGHT, 1, 1, 1, 1, 1, 1]) if routine else np.ones(N_BINS)
    expected = ((counts + 0.5).reshape(7, N_BINS) * awake).ravel()
    expected /= expected.sum()
    drawn = np.zeros(WEEK_SLOTS)
    for _ in range(20_000):
        for slot in skeleton_slots(PROFILE, stats(counts), Scenario(), 10, rng, routine=routine):
            drawn[slot.weekday * N_BINS + slot.hour_bin] += 1
    total_variation = 0.5 * np.abs(drawn / drawn.sum() - expected).sum()
    assert total_variation < 0.02


def _priors_and_counts(actions: list[str]):
    """Two real users who only ever do the first two actions, always on Monday 06-09."""
    monday = datetime(2024, 1, 1, 7, tzinfo=UTC)
    rows = [(u, monday + timedelta(minutes=i), actions[i % 2]) for u in ("u0", "u1") for i in range(10)]
    frame = pl.DataFrame(rows, schema={USER: pl.String, TIMESTAMP: pl.Datetime("us", "UTC"), ACTION: pl.String},
                         orient="row")
    log = EventLog(frame, Schema(), Vocabulary.from_actions(actions))
    priors = estimate_real_priors(log, 10, n_strata=1)
    return priors, priors.count_tables(["u0", "u1"])


def test_without_grounding_the_prompt_sees_no_real_episode_habit_count_or_time():
    actions = [f"Device{i}:on" for i in range(60)]
    priors, counts = _priors_and_counts(actions)
    profile = PROFILE.model_copy(update={"neighbours": ["u0", "u1"], "preferred_actions": [actions[5]]})
    common = {"length": 10, "has_time": True, "n_exemplars": 4, "n_habits": 3, "max_similarity": 0.9}
    grounded = ground_profile(profile, priors, counts, Vocabulary.from_actions(actions), Scenario(),
                              rng=np.random.default_rng(0), **common)
    assert grounded.exemplars and grounded.habits and grounded.legend_actions[1:3] == tuple(actions[:2])

    def monday_morning_share(slots) -> float:  # the only time the real data shows
        return sum((s.weekday, s.hour_bin) == (0, 2) for s in slots) / len(slots)

    grounded_slots, slots, legends = [], [], []
    for seed in range(30):
        grounded_slots += ground_profile(profile, priors, counts, Vocabulary.from_actions(actions), Scenario(),
                                         rng=np.random.default_rng(seed), **common).skeletons[0]
        bare = ground_profile(profile, priors, counts, Vocabulary.from_actions(actions), Scenario(),
                              rng=np.random.default_rng(seed), grounded=False, **common)
        assert bare.exemplars == () and bare.habits == () and len(bare.legend_actions) == MAX_LEGEND
        assert bare.legend_actions[0] == actions[5]  # the profile's own action leads
        slots += bare.skeletons[0]
        legends.append(bare.legend_actions[1:])
    assert len(set(legends)) == 30  # the fill is a random draw, not the real counts' order
    assert {s.hour_bin for s in slots} == set(range(N_BINS)) and {s.weekday for s in slots} == set(range(7))
    assert monday_morning_share(grounded_slots) > 0.2
    assert monday_morning_share(slots) < 0.05  # about 1/56 of the waking-weighted week
