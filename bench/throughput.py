"""Generation throughput with one or several sequences per profile, and what it does to the data.

    .venv/bin/python bench/throughput.py [--data ../shared/datasets/smartthings-fr] [--model qwen2.5-coder-1.5b]
        [--per-profile 1,4,8] [--sequences 32] [--rounds 1] [--threads 2] [--prompt-cache] [--out DIR]

Each round generates `--sequences` sequences once per `--per-profile` value (round r uses seed r, the
values in turn, so load from other processes falls on all of them alike), grounded on the training split,
with one loaded model. Per value it prints accepted sequences per minute of LLM time, prompt and
completion tokens per accepted sequence, the share of attempts accepted, the server's prefix-cache hit
rate (a profile's later prompts reuse its first one's computed prefix), and the data's fidelity against the real test split (action and hour-bin JSD, transition distance,
discriminator AUC, each beside a real sample of the same size) and its copy rate (sequences equal to a
real training window), with the speed ratio against the first value. Runs live in `--out` (default: a
folder under the system temp dir) and resume, so an interrupted bench continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--per-profile", default="1,4,8")
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--prompt-cache", action="store_true", help="let the server reuse cached prompt prefixes")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "behaviorlab-bench-throughput")
    args = parser.parse_args()

    from behaviorlab.datasets import load
    from behaviorlab.errors import BehaviorLabError
    from behaviorlab.evaluate.fidelity import fidelity_table
    from behaviorlab.generate.config import GenerateConfig
    from behaviorlab.generate.run import run_generation
    from behaviorlab.llm.config import LLMConfig
    from behaviorlab.llm.factory import create_backend

    values = [int(v) for v in args.per_profile.split(",")]
    try:
        log = load(args.data)
        train = log.filter(pl.col("split") == "train")
        test = log.filter(pl.col("split") == "test")
        llm = LLMConfig(model=args.model, parallel=1, threads=args.threads, prompt_cache=args.prompt_cache,
                        use_cache=False)
        backend = create_backend(llm)
    except BehaviorLabError as error:
        print(f"error: {error.message}\nhint: {error.hint}", file=sys.stderr)
        return 2
    rows: dict[int, list[dict]] = {k: [] for k in values}
    try:
        for seed in range(args.rounds):
            for k in values:
                config = GenerateConfig(n_users=args.sequences, sequences_per_profile=k, seed=seed, llm=llm)
                run = run_generation(train, args.out / f"k{k}-seed{seed}", config, backend)
                fidelity = {row.name: row for row in fidelity_table(test, run.synthetic)}
                rows[k].append({"manifest": run.manifest.to_json(), "fidelity": fidelity})
                print(f"round {seed} k={k}: {run.manifest.time.accepted_sequences_per_minute} sequences/min",
                      flush=True)
    finally:
        backend.close()
    print(f"\n{args.data.name}, {args.model}, {args.sequences} sequences x {args.rounds} round(s), "
          f"threads {llm.resolved_threads()}, prompt cache {'on' if args.prompt_cache else 'off'}")
    header = ("per profile", "seq/min", "x first", "prompt tok/seq", "compl tok/seq", "accepted", "cache hit",
              "copies", "action JSD", "hour JSD", "transition", "disc. AUC")
    print(" | ".join(header))
    base = None
    for k in values:
        speed = _mean(r["manifest"]["time"]["accepted_sequences_per_minute"] for r in rows[k])
        base = base or speed
        manifests = [r["manifest"] for r in rows[k]]
        accepted = sum(m["attempts"]["accepted"] for m in manifests)
        cells = [str(k), f"{speed:.1f}", f"{speed / base:.2f}",
                 f"{_mean(m['tokens']['prompt_per_accepted_sequence'] for m in manifests):.0f}",
                 f"{_mean(m['tokens']['completion_per_accepted_sequence'] for m in manifests):.0f}",
                 f"{accepted / max(sum(m['attempts']['attempts'] for m in manifests), 1):.0%}",
                 f"{_mean(m['tokens']['prefix_cache_hit_rate'] for m in manifests):.0%}",
                 f"{sum(m['copies']['count'] for m in manifests) / max(accepted, 1):.0%}"]
        for name in ("action_jsd", "hour_bin_jsd", "transition_distance", "discriminator_auc"):
            value = _mean(r["fidelity"][name].value for r in rows[k])
            reference = _mean(r["fidelity"][name].reference or 0.0 for r in rows[k])
            cells.append(f"{value:.3f} (real {reference:.3f})")
        print(" | ".join(cells))
    (args.out / "table.json").write_text(json.dumps(
        {str(k): [{"manifest": r["manifest"], "fidelity": {n: row.value for n, row in r["fidelity"].items()}}
                  for r in rows[k]] for k in values}, indent=1, default=str))
    return 0


def _mean(values) -> float:
    values = list(values)
    return sum(values) / max(len(values), 1)


if __name__ == "__main__":
    sys.exit(main())
