"""Benchmark of the shipped defaults on every shared dataset (not a test).

For each dataset of ../shared/datasets and each neural model (GRU4Rec, LSTM, SASRec), trained with its
config's defaults and only a time budget added, it prints the validation NDCG@10 and HR@10 against the
Markov model's on the same split, the best and the last epoch, and the training seconds.
Each dataset uses the split `behaviorlab train` picks for it (published where it has one, else
leave-one-out), with all its users. The training log's warnings (the best epoch was the last one, few
validation examples) are kept with each result. Results go to OUT/results.json after every cell;
re-running the same command skips the finished cells, so an interrupted run resumes.

    .venv/bin/python bench/defaults.py [--datasets ../shared/datasets] [--budget 90] [--out /tmp/defaults]
        [--only foursquare-nyc] [--models gru4rec] [--set dropout=0.5 --set weight_decay=1e-4]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(width=200)  # wide tables stay readable in logs
MODELS = ("gru4rec", "lstm", "sasrec")


def datasets(root: Path) -> dict[str, Callable[[], object]]:
    from behaviorlab.datasets import load

    return {
        "smartthings-fr": lambda: load(root / "smartthings-fr"),
        "movielens-100k": lambda: load(root / "movielens-100k"),
        "kasteren": lambda: load(root / "kasteren"),
        "foursquare-nyc": lambda: load(root / "foursquare-nyc"),
        "amazon-beauty": lambda: load(root / "amazon-beauty" / "Beauty.txt", format="sequence-lines"),
    }


def run_cell(parts, model: str, budget: float, threads: int, settings: dict[str, str] | None = None) -> dict:
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.registry import model_class

    cls = model_class(model)
    overrides = {} if model == "markov" else {"max_train_seconds": budget, "threads": threads} | (settings or {})
    instance = cls(cls.config_class(**overrides))
    started = time.perf_counter()
    instance.fit(parts.train, parts.valid)
    seconds = time.perf_counter() - started
    metrics = ranking_report(instance, parts.valid, ks=(1, 10))
    result = {"NDCG@10": metrics["NDCG@10"], "HR@10": metrics["HR@10"], "HR@1": metrics["HR@1"], "seconds": seconds}
    record = getattr(instance, "training_record_", None)
    if record is not None:
        result |= {"best epoch": record.best_epoch, "epochs": record.epoch, "stopped by time": record.stopped_by_time,
                   "warnings": record.warnings}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    parser.add_argument("--only", default="kasteren,smartthings-fr,foursquare-nyc,movielens-100k,amazon-beauty",
                        help="Datasets, comma separated (smallest first).")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--budget", type=float, default=90.0, help="Training seconds per neural model and dataset.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-defaults"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="A config key for every neural model instead of its default (repeatable), to try a "
                             "change of defaults; use another --out for each set of changes.")
    args = parser.parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.set)  # values as text: the config's validation types them

    from behaviorlab.sequences import make_split, split_rule

    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    loaders = datasets(args.datasets)
    started = time.perf_counter()
    for name in args.only.split(","):
        if all(f"{name}/{model}" in results for model in ["markov", *args.models.split(",")]):
            continue
        log = loaders[name]()
        split = split_rule(log, None)
        parts = make_split(log, split)
        console.print(f"{name}: {log!r}, {split} split, {len(parts.valid):,} validation examples", highlight=False)
        for model in ["markov", *args.models.split(",")]:
            key = f"{name}/{model}"
            if key in results:
                continue
            results[key] = run_cell(parts, model, args.budget, args.threads, settings)
            console.print(f"  {model}: {results[key]}", highlight=False)
            results_path.write_text(json.dumps(results, indent=1))
    print_table(results)
    console.print(f"{time.perf_counter() - started:.0f} s in this call", highlight=False)
    return 0


def print_table(results: dict[str, dict]) -> None:
    table = Table(title="Validation NDCG@10 with default settings, against Markov on the same split")
    for column in ("dataset", "model", "NDCG@10", "Markov NDCG@10", "ratio", "HR@10", "best/ran epochs", "seconds"):
        table.add_column(column)
    for key, result in results.items():
        dataset, model = key.split("/")
        markov = results.get(f"{dataset}/markov")
        if model == "markov" or markov is None:
            continue
        table.add_row(dataset, model, f"{result['NDCG@10']:.4f}", f"{markov['NDCG@10']:.4f}",
                      f"{result['NDCG@10'] / markov['NDCG@10']:.2f}", f"{result['HR@10']:.4f}",
                      f"{result['best epoch']}/{result['epochs']}" + (" (budget)" if result["stopped by time"] else ""),
                      f"{result['seconds']:.0f}")
    console.print(table)
    for key, result in results.items():
        for warning in result.get("warnings", []):
            console.print(f"{key}: {warning}", highlight=False)


if __name__ == "__main__":
    raise SystemExit(main())
