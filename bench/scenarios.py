"""The training-scenario table on real data (SmartThings FR), and the environment-shift experiment.

    .venv/bin/python bench/scenarios.py [--data ../shared/datasets/smartthings-fr] [--llm-run RUN]
        [--night-run RUN] [--out DIR] [--model gru4rec] [--seeds 0,1,2]

Main table: no augmentation (real only), Markov-synthetic and LLM-synthetic augmentation at 10%, 25% and
100% of the real training sequences, mean +/- std over the seeds, on the published real test split
(predict the 10th event from the first 9). Every gain is relative to real-only training measured in
the same run with the same seed and subset. Without --llm-run the LLM rows are left out (and said so).
Shift: train on day scenes (10th event 06-18h), test on night; no augmentation vs Markov vs the LLM's
"it is night now" run. Results are resumable JSON files in --out (experiment.json,
experiment-shift.json), which `behaviorlab report` picks up when --out is the run directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _table(title: str, summary: list[dict], scenarios: list[str]) -> None:
    by = {(r["source"], r["scenario"], r["fraction"]): r for r in summary}
    print(f"\n{title}")
    metric = summary[0]["metric"]
    fractions = sorted({r["fraction"] for r in summary})
    header = f"{'real data':>9} | {'no augmentation':>17}"
    columns = [(src, sc) for sc in scenarios for src in ("none", "markov", "llm") if any((src, sc, f) in by for f in fractions)]
    for src, sc in columns:
        header += f" | {src + ' ' + sc:>36}"
    print(f"test {metric}, mean ± std over seeds; in brackets the relative gain vs no augmentation (mean ± std); "
          "'none real_continued' = real, then real again (the two-stage control without synthetic data)")
    print(header)
    print("-" * len(header))
    for f in fractions:
        base = by.get(("none", "real_only", f))
        line = f"{f:>9.0%} | " + (f"{base['mean']:.4f} ± {base['std']:.4f}" if base else f"{'—':>17}")
        for src, sc in columns:
            r = by.get((src, sc, f))
            cell = (f"{r['mean']:.4f} ± {r['std']:.4f} ({r['gain_mean']:+.1%} ± {r['gain_std']:.1%})" if r else "—")
            line += f" | {cell:>36}"
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--llm-run", type=Path, help="Generation run (or .parquet) for the LLM rows.")
    parser.add_argument("--night-run", type=Path, help="Generation run with the 'night' scenario for the shift rows.")
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench-scenarios"))
    parser.add_argument("--model", default="gru4rec")
    parser.add_argument("--epochs", type=int, default=100, help="Most epochs per fit; early stopping decides.")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fractions", default="0.1,0.25,1")
    parser.add_argument("--scenarios", default="real_only,real_continued,pretrain_augment,finetune_augment",
                        help="Main-table scenarios (add synthetic_only, finetune_replace for all five).")
    parser.add_argument("--markov-sequences", type=int, default=200,
                        help="Markov sequences per cell when no LLM run sets the count.")
    parser.add_argument("--skip-shift", action="store_true")
    args = parser.parse_args()

    if not args.data.exists():
        print(f"SmartThings FR not found at {args.data}; pass --data.", file=sys.stderr)
        return 2
    from behaviorlab.datasets import load
    from behaviorlab.evaluate.scenarios import ExperimentConfig, run_experiment, summarise
    from behaviorlab.evaluate.shift import scene_split
    from behaviorlab.report.run_files import read_run
    from behaviorlab.sequences import published_split

    split = published_split(load(args.data))
    settings = {"epochs": args.epochs, "patience": args.patience, "threads": args.threads, "max_len": 10,
                "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    if args.model in ("gru4rec", "lstm"):
        settings["hidden_size"] = args.hidden_size
    scenarios = tuple(args.scenarios.split(","))
    seeds = tuple(int(s) for s in args.seeds.split(","))
    args.out.mkdir(parents=True, exist_ok=True)

    def progress(done: int, total: int, info: dict | None = None) -> None:
        print(f"  [{done}/{total}] {time.strftime('%H:%M:%S')} {dict(info or {})}", flush=True)

    llm = read_run(args.llm_run).synthetic if args.llm_run else None
    print(f"real: {split.train.n_users:,} train sequences, {len(split.valid):,} valid, {len(split.test):,} test; "
          f"LLM run: {args.llm_run or 'none (LLM rows left out)'}"
          + (f" ({llm.n_users} sequences)" if llm is not None else ""))
    config = ExperimentConfig(predictor=args.model, predictor_settings=settings, seeds=seeds, scenarios=scenarios,
                              fractions=tuple(float(f) for f in args.fractions.split(",")),
                              sources=("llm", "markov") if llm is not None else ("markov",),
                              markov_sequences=args.markov_sequences)
    started = time.time()
    cells = run_experiment(split, llm, config, results_path=args.out / "experiment.json", progress=progress)
    _table(f"{args.model}: training scenarios on SmartThings FR ({time.time() - started:.0f} s)",
           summarise(cells, config.metric), [s for s in scenarios if s != "real_only"])

    if args.skip_shift:
        return 0
    shifted, counts = scene_split(split)
    print(f"\nEnvironment shift: train {counts.train[0]:,} of {counts.train[1]:,} sequences (10th event 06-18h), "
          f"valid {counts.valid[0]:,} of {counts.valid[1]:,} (day), test {counts.test[0]:,} of {counts.test[1]:,} (night)")
    night = read_run(args.night_run).synthetic if args.night_run else None
    print(f"night LLM run: {args.night_run or 'none (the LLM row awaits a run with the night scenario)'}"
          + (f" ({night.n_users} sequences)" if night is not None else ""))
    shift_config = config.model_copy(update={
        "title": "Environment shift: trained on day scenes (06-18h), tested on night", "fractions": (1.0,),
        "sources": ("llm", "markov") if night is not None else ("markov",)})
    started = time.time()
    cells = run_experiment(shifted, night, shift_config, results_path=args.out / "experiment-shift.json",
                           progress=progress)
    _table(f"{args.model}: environment shift ({time.time() - started:.0f} s)", summarise(cells, config.metric),
           [s for s in scenarios if s != "real_only"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
