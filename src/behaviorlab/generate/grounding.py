"""What one profile's prompt is grounded on: exemplars, habits, legend actions and the time skeleton.

Exemplars are real episodes of the profile's nearest real users, chosen by SPPC selection. Habits,
action mix and time-of-week counts come from the neighbourhood's counts, or, with differential
privacy, from the profile's stratum's Laplace-noised count tables (see profiles.privacy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from behaviorlab.compress.select import select_representative
from behaviorlab.generate.scenario import Scenario
from behaviorlab.profiles.episodes import N_BINS, Episode, Event
from behaviorlab.profiles.realstats import WEEK_SLOTS, RealPriors, StratumStats
from behaviorlab.schema import Profile, Vocabulary

MAX_LEGEND = 40  # codes in one prompt: the profile's own world, not the whole vocabulary
NIGHT_WEIGHT = 0.3  # devices still act while people sleep, so asleep hours keep some weight


@dataclass(frozen=True)
class Grounding:
    exemplars: tuple[Episode, ...]
    habits: tuple[tuple[str, str, int], ...]  # (from, to, count), most common first
    legend_actions: tuple[str, ...]
    days: tuple[int, ...] | None  # weekday of each slot to fill, in time order; None without time
    bins: tuple[int, ...]  # hour bins the LLM may choose
    redundant_skipped: int


def neighbourhood_stats(priors: RealPriors, users: list[str]) -> StratumStats:
    """Exact count tables over the given users' episodes (used when no privacy budget is set)."""
    return priors.count_tables(users)


def _awake_weights(profile: Profile) -> np.ndarray:
    """[8] weight of each hour bin: 1 when the bin overlaps the waking day, NIGHT_WEIGHT otherwise."""
    wake, sleep = profile.routine.wake, profile.routine.sleep
    weights = np.full(N_BINS, NIGHT_WEIGHT)
    for b in range(N_BINS):
        for start in (3 * b, 3 * b + 24):
            if start < sleep and start + 3 > wake:
                weights[b] = 1.0
    return weights


def skeleton_days(profile: Profile, stats: StratumStats, scenario: Scenario, length: int,
                  rng: np.random.Generator) -> tuple[int, ...]:
    """Weekday of each of `length` slots: sampled from the time-of-week counts, in order from the first day."""
    weights = (stats.slot_counts + 0.5).reshape(7, N_BINS) * _awake_weights(profile)[None, :]
    mask = np.zeros((7, N_BINS))
    mask[np.ix_(sorted(scenario.days), sorted(scenario.bins))] = 1.0
    weights = (weights * mask).ravel()
    slots = rng.choice(WEEK_SLOTS, size=length, p=weights / weights.sum())
    days = slots // N_BINS
    start = int(days[0])
    return tuple(int(d) for d in sorted(days.tolist(), key=lambda d: (d - start) % 7))


def ground_profile(profile: Profile, priors: RealPriors, stats: StratumStats, vocabulary: Vocabulary,
                   scenario: Scenario, *, length: int, has_time: bool, n_exemplars: int, n_habits: int,
                   max_similarity: float, rng: np.random.Generator) -> Grounding:
    candidates = [e for user in profile.neighbours for e in priors.episodes[user]]
    selection = select_representative(candidates, n_exemplars, max_similarity=max_similarity)
    exemplars = tuple(candidates[i] for i in selection.chosen)
    flat = stats.transition_counts.ravel()
    top = [int(i) for i in np.argsort(-flat, kind="stable")[:n_habits] if flat[i] >= 1.0]
    v = len(priors.actions)
    habits = tuple((priors.actions[i // v], priors.actions[i % v], int(round(flat[i]))) for i in top)
    by_frequency = [priors.actions[i] for i in np.argsort(-stats.action_counts, kind="stable")
                    if stats.action_counts[i] >= 1.0]
    new_device_actions = [a for a in vocabulary.actions for d in scenario.new_devices if a.startswith(f"{d}:")]
    # Every action the prompt shows needs a code; the most frequent others fill up to MAX_LEGEND.
    ordered = dict.fromkeys([*profile.preferred_actions, *(a for e in exemplars for a in e.actions),
                             *(a for h in habits for a in h[:2]), *new_device_actions])
    for action in by_frequency:
        if len(ordered) >= MAX_LEGEND:
            break
        ordered.setdefault(action, None)
    legend = tuple(ordered)
    days = skeleton_days(profile, stats, scenario, length, rng) if has_time else None
    return Grounding(exemplars, habits, legend, days, tuple(sorted(scenario.bins)), selection.redundant)


def assemble_events(days: tuple[int, ...] | None, bins: list[int] | None, actions: list[str]) -> list[Event]:
    """Events from the skeleton's days, the LLM's bins and the decoded actions."""
    if days is None or bins is None:
        return [Event(a) for a in actions]
    return [Event(a, d, b) for d, b, a in zip(days, bins, actions, strict=True)]
