"""Generation throughput on the ray engine with 1 vs 2 actors (one embedded model of one thread each).

    PYTHONPATH=src .venv/bin/python bench/ray_actors.py [--data ../shared/datasets/smartthings-fr]
                                                        [--model smollm2-135m] [--n-users 32]

Both runs generate the same run (same seed and settings, no completions cache) into fresh folders in one
local Ray session of 2 CPUs; the figure is sequences per second of wall time, and the two runs' synthetic
logs must be byte-identical (the engine spreads requests, it does not change them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from behaviorlab.datasets import load
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.engine import RayBackend
from behaviorlab.generate.run import PARQUET_FILE, run_generation
from behaviorlab.llm import LLMConfig
from behaviorlab.schema import SPLIT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n-users", type=int, default=32)
    args = parser.parse_args()
    import ray

    log = load(args.data)
    if SPLIT in log.frame.columns:
        log = log.filter(pl.col(SPLIT) == "train")
    config = GenerateConfig(n_users=args.n_users, length=8, batch_size=8, seed=0,
                            llm=LLMConfig(model=args.model, parallel=1, threads=1, use_cache=False))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rates, outputs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for actors in (1, 2):
            backend = RayBackend(config.llm, actors=actors)  # models loaded before the clock starts
            try:
                started = time.perf_counter()
                result = run_generation(log, Path(tmp) / str(actors), config, backend)
                wall = time.perf_counter() - started
            finally:
                backend.close()
            accepted = result.manifest.attempts.accepted
            rates[actors] = args.n_users / wall
            outputs[actors] = (Path(tmp) / str(actors) / PARQUET_FILE).read_bytes()
            print(f"{actors} actor(s): {args.n_users} sequences ({accepted} accepted, "
                  f"{result.manifest.attempts.attempts} attempts) in {wall:.1f} s = {rates[actors]:.3f} seq/s")
    print(f"2 actors / 1 actor: {rates[2] / rates[1]:.2f}x; synthetic logs byte-identical: {outputs[1] == outputs[2]}")
    ray.shutdown()


if __name__ == "__main__":
    main()
