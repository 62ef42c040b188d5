"""What one profile's prompt is grounded on: exemplars, habits, legend actions and the time skeleton.

Exemplars are real episodes of the profile's nearest real users, chosen by SPPC selection. Habits,
action mix and time-of-week counts come from the neighbourhood's counts, or, with differential
privacy, from the profile's stratum's Laplace-noised count tables (see profiles.privacy).

The time skeleton fixes when every event happens (weekday and hour bin), sampled in code from the
time-of-week counts: the LLM only chooses the action at each given time. Bins chosen by the LLM were
far from real (hour-bin Jensen-Shannon divergence 0.152 with Qwen2.5-Coder-1.5B, real vs real 0.003),
and every bin it wrote cost output tokens.

By default the counts alone weigh the slots (`time_weights = "counts"`); "counts_and_routine" also
weighs each bin by the profile's waking hours (asleep bins x NIGHT_WEIGHT), which on SmartThings FR
pulled the skeleton's hour-bin JSD against the real test events to 0.039-0.044 (counts alone
0.007-0.010; a real sample of the same size 0.001-0.004; bench/skeleton_times.py), since devices act
at all hours and the routine is a person's.

Without grounding (`grounded=False`, the ablation that shows what grounding is worth) a prompt keeps
only the profile and the scenario: no exemplars, no habits, a legend of the profile's own actions filled
up with other actions of the vocabulary in a seeded random order (no counts), and a time skeleton drawn
evenly within the scenario's days and bins and the profile's waking hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from behaviorlab.compress.select import select_representative
from behaviorlab.generate.scenario import Scenario
from behaviorlab.profiles.episodes import N_BINS, Episode, Event
from behaviorlab.profiles.realstats import WEEK_SLOTS, RealPriors, StratumStats
from behaviorlab.schema import Profile, Vocabulary

MAX_LEGEND = 40  # codes in one prompt: the profile's own world, not the whole vocabulary
NIGHT_WEIGHT = 0.3  # devices still act while people sleep, so asleep hours keep some weight


class TimeSlot(NamedTuple):
    weekday: int  # 0..6, Monday first
    hour_bin: int  # 0..7, three hours each


@dataclass(frozen=True)
class Grounding:
    exemplars: tuple[Episode, ...]
    habits: tuple[tuple[str, str, int], ...]  # (from, to, count), most common first
    legend_actions: tuple[str, ...]
    # one time skeleton per sequence to write: when each of its events happens, in time order; None without time
    skeletons: tuple[tuple[TimeSlot, ...], ...] | None
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


def skeleton_slots(profile: Profile, slot_counts: np.ndarray, scenario: Scenario, length: int,
                   rng: np.random.Generator, *, routine: bool = False) -> tuple[TimeSlot, ...]:
    """Weekday and hour bin of each of `length` events: sampled from the time-of-week counts [56] (times the
    profile's waking-hours weights with `routine`) within the scenario's days and bins, then put in time
    order from the first sampled day (a sequence spans at most one week)."""
    weights = (slot_counts + 0.5).reshape(7, N_BINS)
    if routine:
        weights = weights * _awake_weights(profile)[None, :]
    mask = np.zeros((7, N_BINS))
    mask[np.ix_(sorted(scenario.days), sorted(scenario.bins))] = 1.0
    weights = (weights * mask).ravel()
    slots = [TimeSlot(*divmod(int(s), N_BINS)) for s in rng.choice(WEEK_SLOTS, size=length, p=weights / weights.sum())]
    start = slots[0].weekday
    return tuple(sorted(slots, key=lambda s: ((s.weekday - start) % 7, s.hour_bin)))


def ground_profile(profile: Profile, priors: RealPriors, stats: StratumStats, vocabulary: Vocabulary,
                   scenario: Scenario, *, length: int, has_time: bool, n_exemplars: int, n_habits: int,
                   max_similarity: float, rng: np.random.Generator, grounded: bool = True,
                   routine_times: bool = False, sequences: int = 1) -> Grounding:
    """What one profile's prompt shows, for `sequences` sequences written in one answer (a skeleton each,
    drawn one after the other from `rng`). Without grounding the profile's waking hours are the only time
    information, so they always weigh the skeleton; with it, only when `routine_times` asks."""
    if grounded:
        candidates = [e for user in profile.neighbours for e in priors.episodes[user]]
        selection = select_representative(candidates, n_exemplars, max_similarity=max_similarity)
        exemplars = tuple(candidates[i] for i in selection.chosen)
        flat = stats.transition_counts.ravel()
        top = [int(i) for i in np.argsort(-flat, kind="stable")[:n_habits] if flat[i] >= 1.0]
        v = len(priors.actions)
        habits = tuple((priors.actions[i // v], priors.actions[i % v], round(float(flat[i]))) for i in top)
        fill = [priors.actions[i] for i in np.argsort(-stats.action_counts, kind="stable") if stats.action_counts[i] >= 1.0]
        slot_counts, redundant = stats.slot_counts, selection.redundant
    else:
        exemplars, habits, redundant = (), (), 0
        fill = [vocabulary.actions[i] for i in rng.permutation(len(vocabulary.actions))]
        slot_counts = np.zeros_like(stats.slot_counts)
    new_device_actions = [a for a in vocabulary.actions for d in scenario.new_devices if a.startswith(f"{d}:")]
    # Every action the prompt shows needs a code; the most frequent others (without grounding: random
    # others) fill up to MAX_LEGEND.
    ordered = dict.fromkeys([*profile.preferred_actions, *(a for e in exemplars for a in e.actions),
                             *(a for h in habits for a in h[:2]), *new_device_actions])
    for action in fill:
        if len(ordered) >= MAX_LEGEND:
            break
        ordered.setdefault(action, None)
    legend = tuple(ordered)
    skeletons = (tuple(skeleton_slots(profile, slot_counts, scenario, length, rng, routine=routine_times or not grounded)
                       for _ in range(sequences)) if has_time else None)
    return Grounding(exemplars, habits, legend, skeletons, redundant)


def assemble_events(time_slots: tuple[TimeSlot, ...] | None, actions: list[str]) -> list[Event]:
    """Events from the skeleton's time slots and the LLM's decoded actions, one action per slot."""
    if time_slots is None:
        return [Event(a) for a in actions]
    return [Event(a, slot.weekday, slot.hour_bin) for slot, a in zip(time_slots, actions, strict=True)]
