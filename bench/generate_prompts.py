"""Prompt tokens per generated event: SPPC-compressed prompts vs plain JSON prompting of the same content.

    .venv/bin/python bench/generate_prompts.py [--data ../shared/datasets/smartthings-fr] [--model qwen2.5-coder-1.5b]
                                               [--profiles 200] [--exemplars 6]

Builds the prompts of a generation run (profiles, SPPC exemplars, habits, legend) without generating,
renders each twice (compact codes + legend + time bins + run-lengths, and plain JSON with full names),
and counts both with the model's own tokenizer. The plain rendering is the baseline measured in the
same run; the figure reported is compressed / plain (the target is at most 0.5).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from behaviorlab.compress.tokens import PromptCost
from behaviorlab.datasets import load
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.run import RunContext, prepare_prompts
from behaviorlab.generate.store import RunStore
from behaviorlab.llm import LLMConfig, create_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--profiles", type=int, default=200)
    parser.add_argument("--exemplars", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    log = load(args.data)
    if "split" in log.schema.extras:
        log = log.filter(pl.col("split") == "train")  # prompts are grounded on training data only
    config = GenerateConfig(n_users=args.profiles, n_exemplars=args.exemplars, seed=args.seed,
                            llm=LLMConfig(model=args.model, parallel=1, use_cache=False))
    backend = create_backend(config.llm)
    try:
        context = RunContext(log, config)
        with tempfile.TemporaryDirectory() as folder:
            store = RunStore(Path(folder) / "prompts.sqlite")
            prepare_prompts(context, store, backend)
            profiles = store.profiles()
            store.close()
    finally:
        backend.close()
    cost = PromptCost(sum(p.compressed_tokens for p in profiles), sum(p.plain_tokens for p in profiles),
                      sum(p.slots for p in profiles) * context.length)
    print(f"data {args.data.name}, {len(profiles)} profiles x {context.length} events, tokenizer {args.model}")
    print(f"prompt tokens per generated event: compressed {cost.compressed_per_event:.1f}, "
          f"plain JSON {cost.plain_per_event:.1f}")
    print(f"compressed / plain = {cost.ratio:.3f}")


if __name__ == "__main__":
    main()
