"""How diverse a population is: entropy of its attributes and coverage of the real action space."""

from __future__ import annotations

import math
from collections import Counter

from behaviorlab.profiles.realstats import RealPriors
from behaviorlab.schema import Population, Profile


def _attributes(profile: Profile) -> dict[str, object]:
    return {
        "stratum": profile.stratum,
        "occupation": profile.occupation,
        "wake_hour": round(profile.routine.wake),
        "sleep_hour": round(profile.routine.sleep),
        "traits": tuple(profile.traits),
        "anchor_user": profile.neighbours[0] if profile.neighbours else None,
    }


def attribute_entropy(population: Population) -> float:
    """Mean over attributes of the entropy of their values, divided by log(n): 0 = clones, 1 = all distinct."""
    n = len(population.profiles)
    if n < 2:
        return 0.0
    rows = [_attributes(p) for p in population.profiles]
    entropies = []
    for name in rows[0]:
        counts = Counter(row[name] for row in rows)
        entropies.append(-sum(c / n * math.log(c / n) for c in counts.values()) / math.log(n))
    return sum(entropies) / len(entropies)


def grounding_coverage(population: Population, priors: RealPriors) -> float:
    """Share of the actions seen in the real log that the population's grounding users ever perform (a
    property of the population; `evaluate.diversity`'s action_coverage is the share of the vocabulary a log uses)."""
    user_index = {u: i for i, u in enumerate(priors.users)}
    seen_real = priors.counts.sum(axis=0) > 0
    covered = set()
    for profile in population.profiles:
        for user in profile.neighbours:
            covered.update(int(j) for j in (priors.counts[user_index[user]] > 0).nonzero()[0])
    return len(covered) / max(int(seen_real.sum()), 1)


def diversity_report(population: Population, priors: RealPriors) -> dict[str, float]:
    return {"attribute_entropy": round(attribute_entropy(population), 4),
            "grounding_coverage": round(grounding_coverage(population, priors), 4)}
