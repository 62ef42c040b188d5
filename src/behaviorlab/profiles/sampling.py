"""Population sampling with a diversity knob.

`diversity` d in [0, 1] sharpens or flattens every categorical choice: weights w become w^((1-d)/d),
so d = 0 always takes the most common stratum and its most typical user ("clones of the typical
user"), d = 0.5 samples in proportion to the real frequencies, and d = 1 samples strata uniformly
("cover every stratum"). Routine anchors are read from the ATUS distributions at quantile
0.5 + d * (U - 0.5): the median day at d = 0, the whole distribution at d = 1.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from behaviorlab.config import StrictConfig
from behaviorlab.profiles.atus import AtusPriors
from behaviorlab.profiles.infer import infer_profile
from behaviorlab.profiles.realstats import RealPriors
from behaviorlab.schema import Population, Profile


class PopulationConfig(StrictConfig):
    n_profiles: int = Field(100, ge=1)
    seed: int = 0
    diversity: float = Field(0.5, ge=0.0, le=1.0)
    n_neighbours: int = Field(8, ge=1, le=100)


def sharpen(weights: np.ndarray, diversity: float) -> np.ndarray:
    """Probabilities from non-negative weights at the given diversity (see module docstring)."""
    weights = np.clip(np.asarray(weights, dtype=float), 0.0, None)
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    if diversity <= 0.0:
        chosen = np.zeros_like(weights)
        chosen[int(np.argmax(weights))] = 1.0
        return chosen
    exponent = (1.0 - diversity) / diversity
    logs = np.where(weights > 0, exponent * np.log(np.where(weights > 0, weights, 1.0)), -np.inf)
    probabilities = np.exp(logs - logs.max())
    return probabilities / probabilities.sum()


def sample_profile(index: int, priors: RealPriors, atus: AtusPriors, config: PopulationConfig) -> Profile:
    """Profile number `index`: a function of (seed, index) only, so any subset can be re-made identically."""
    rng = np.random.default_rng([config.seed, index])
    d = config.diversity
    stratum_sizes = np.bincount(priors.strata, minlength=len(priors.stratum_names))
    stratum = int(rng.choice(len(stratum_sizes), p=sharpen(stratum_sizes, d)))
    members = priors.stratum_members(stratum)
    anchor = int(members[rng.choice(len(members), p=sharpen(priors.typicality(members), d))])
    base = infer_profile(priors, anchor, f"p{index:05d}", config.n_neighbours)
    routine_stratum = atus.strata[int(rng.choice(len(atus.strata), p=sharpen(atus.weights, d)))]
    u = 0.5 + d * (rng.random(5) - 0.5)
    routine = routine_stratum.routine(*u)
    evening = routine_stratum.evening_activity()
    pastime = evening[int(rng.choice(len(evening), p=sharpen([s for _, s in evening], d)))][0]
    works = routine.work_start is not None
    traits = [*base.traits, f"evenings: {pastime}"]
    if routine.wake < 6.0:
        traits.append("early riser")
    if routine.sleep > 24.5:
        traits.append("late sleeper")
    persona = (f"A {'working' if works else 'non-working'} person (wakes about {routine.wake:.0f}h, sleeps about "
               f"{routine.sleep % 24:.0f}h{f', works {routine.work_start:.0f}-{routine.work_end:.0f}h' if works else ''}). "
               + base.persona)
    return base.model_copy(update={
        "source": "sampled", "routine": routine, "occupation": "employed" if works else "not employed",
        "traits": traits, "stratum": f"{base.stratum} | {routine_stratum.label}", "persona": persona,
    })


def sample_population(priors: RealPriors, atus: AtusPriors, config: PopulationConfig) -> Population:
    profiles = [sample_profile(i, priors, atus, config) for i in range(config.n_profiles)]
    return Population(profiles=profiles, seed=config.seed, diversity=config.diversity,
                      settings={"n_neighbours": config.n_neighbours, "n_strata": len(priors.stratum_names)})
