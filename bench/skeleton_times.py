"""How close the generation's time skeleton comes to real event times, with and without the routine weight.

    .venv/bin/python bench/skeleton_times.py [--data ../shared/datasets/smartthings-fr] [--fraction 0.1]
        [--seeds 0,1] [--profiles 60]

The LLM writes only actions; when each event happens is sampled in code (generate/grounding.py:
`skeleton_slots`) from the real time-of-week counts of each profile's neighbourhood, optionally times the
profile's waking-hours weight (`time_weights = "counts_and_routine"`). For the profiles of a generation run
grounded on each seed's real subset (the experiment's subsets), this samples the skeletons both ways and
prints the hour-bin Jensen-Shannon divergence (bits) against the real test events, beside a real sample of
the same size drawn from the training events (what sampling noise alone gives). No LLM is involved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--profiles", type=int, default=60)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"No dataset at {args.data}; pass --data.", file=sys.stderr)
        return 2
    import polars as pl

    from behaviorlab.datasets import load
    from behaviorlab.evaluate.fidelity import counts_jsd
    from behaviorlab.evaluate.scenarios import subsample_users
    from behaviorlab.generate.config import GenerateConfig
    from behaviorlab.generate.grounding import skeleton_slots
    from behaviorlab.generate.run import RunContext
    from behaviorlab.profiles.episodes import iter_user_events

    log = load(args.data)
    train, test = log.filter(pl.col("split") == "train"), log.filter(pl.col("split") == "test")
    real_bins = [e.hour_bin for _, events in iter_user_events(test) for e in events]
    train_bins = np.array([e.hour_bin for _, events in iter_user_events(train) for e in events])
    print(f"hour-bin JSD (bits) against the {len(real_bins):,} real test events; skeletons of {args.profiles} "
          f"profiles x 10 events, grounded on {args.fraction:.0%} of the training sequences")
    print(f"{'seed':>4} | {'counts alone':>12} | {'counts x routine':>16} | {'real sample':>11}")
    for seed in (int(s) for s in args.seeds.split(",")):
        subset = subsample_users(train, args.fraction, seed)
        ctx = RunContext(subset, GenerateConfig(n_users=args.profiles, seed=seed))
        rng = np.random.default_rng(seed)
        scores = []
        for routine in (False, True):
            drawn = [slot.hour_bin for profile in ctx.population.profiles
                     for slot in skeleton_slots(profile, ctx.stats_for(profile).slot_counts, ctx.scenario, 10, rng,
                                                routine=routine)]
            scores.append(counts_jsd(drawn, real_bins))
        sample = train_bins[rng.choice(len(train_bins), size=10 * args.profiles, replace=False)]
        print(f"{seed:>4} | {scores[0]:>12.4f} | {scores[1]:>16.4f} | {counts_jsd(sample.tolist(), real_bins):>11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
