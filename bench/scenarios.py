"""The training-scenario table on real data (SmartThings FR), and the environment-shift experiment.

    .venv/bin/python bench/scenarios.py [--data ../shared/datasets/smartthings-fr] [--llm-run RUN ...]
        [--night-run RUN] [--out DIR] [--model gru4rec] [--seeds 0,1,2]

Main table: no augmentation (real only), its oracle (real only on all the real training data), the
real->real control, Markov-synthetic and LLM-synthetic augmentation at 10%, 25% and 100% of the real
training sequences, on the published real test split (predict the 10th event from the first 9). Every
gain is paired by seed with real-only training of the same subset, with a 95% t-interval over seeds,
the share of the gap to the oracle it closes, and whether it wins (evaluate/scenarios.py: WIN_RULE).
Each --llm-run must be grounded on exactly one cell's real subset (repeat the flag, one run per subset):
write the subsets with `behaviorlab experiment --real DATA --fractions F --seeds S --write-subsets DIR`,
generate from each with `behaviorlab generate --data DIR/FILE --out RUN`. Without --llm-run the LLM rows
are left out (and said so).
Shift: train on day scenes (10th event 06-18h), test on night; the oracle also trains on the real night
scenes; no augmentation vs Markov vs the LLM's "it is night now" run grounded on the day training data
(`--shift --write-subsets`). Results are resumable JSON files in --out (experiment.json,
experiment-shift.json), which `behaviorlab report` picks up when --out is the run directory.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _table(title: str, summary: list[dict]) -> None:
    from behaviorlab.evaluate.scenarios import WIN_RULE, row_texts

    print(f"\n{title}")
    metric = summary[0]["metric"]
    print(f"test {metric}, mean ± std over seeds; gain vs real only (same seed) with its 95% t-interval; "
          f"'none real_continued' = real, then real again (the control); {WIN_RULE}")
    header = f"{'real data':>9} | {'source':<6} | {'scenario':<16} | {metric:>17} | {'gain [95% CI]':>30} | {'gap':>6} | wins"
    print(header)
    print("-" * len(header))
    order = {"real_only": 0, "real_continued": 1}
    for r in sorted(summary, key=lambda r: (r["fraction"], order.get(r["scenario"], 2), r["source"] != "none",
                                            r["scenario"], r["source"])):
        texts = row_texts(r)
        print(f"{r['fraction']:>9.0%} | {r['source']:<6} | {r['scenario']:<16} | {r['mean']:.4f} ± {r['std']:.4f} | "
              f"{texts['gain']:>30} | {texts['gap']:>6} | {texts['wins']}")
    for note in dict.fromkeys(r["note"] for r in summary if r["note"]):
        print(f"note: {note}")


def _runs(paths: list[Path] | None) -> list:
    from behaviorlab.evaluate.scenarios import SyntheticRun
    from behaviorlab.report.run_files import read_run

    return [SyntheticRun(str(path), run.synthetic, run.grounding_digest) for path in paths or [] for run in [read_run(path)]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--llm-run", type=Path, action="append",
                        help="Generation run for the LLM rows, grounded on one cell's real subset; repeatable.")
    parser.add_argument("--night-run", type=Path, action="append",
                        help="Generation run with the 'night' scenario, grounded on the day training data.")
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
    from behaviorlab.evaluate.shift import scene_oracle, scene_split
    from behaviorlab.sequences import published_split

    split = published_split(load(args.data))
    settings = {"epochs": args.epochs, "patience": args.patience, "threads": args.threads, "max_len": 10,
                "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    if args.model in ("gru4rec", "lstm"):
        settings["hidden_size"] = args.hidden_size
    # The training-loop settings exist only for neural models; a one-pass model (markov) takes none of them.
    from behaviorlab.models.registry import model_class

    accepted = model_class(args.model).config_class.model_fields
    ignored = sorted(key for key in settings if key not in accepted)
    if ignored:
        print(f"{args.model} takes no {', '.join(ignored)}: those settings are left out")
    settings = {key: value for key, value in settings.items() if key in accepted}
    scenarios = tuple(args.scenarios.split(","))
    seeds = tuple(int(s) for s in args.seeds.split(","))
    args.out.mkdir(parents=True, exist_ok=True)

    def progress(done: int, total: int, info: dict | None = None) -> None:
        print(f"  [{done}/{total}] {time.strftime('%H:%M:%S')} {dict(info or {})}", flush=True)

    llm = _runs(args.llm_run)
    print(f"real: {split.train.n_users:,} train sequences, {len(split.valid):,} valid, {len(split.test):,} test; "
          f"LLM runs: {len(llm) or 'none (LLM rows left out)'}")
    config = ExperimentConfig(predictor=args.model, predictor_settings=settings, seeds=seeds, scenarios=scenarios,
                              fractions=tuple(float(f) for f in args.fractions.split(",")),
                              sources=("llm", "markov") if llm else ("markov",),
                              markov_sequences=args.markov_sequences)
    started = time.time()
    cells = run_experiment(split, llm, config, results_path=args.out / "experiment.json", progress=progress)
    _table(f"{args.model}: training scenarios on SmartThings FR ({time.time() - started:.0f} s)",
           summarise(cells, config.metric))

    if args.skip_shift:
        return 0
    shifted, counts = scene_split(split)
    print(f"\nEnvironment shift: train {counts.train[0]:,} of {counts.train[1]:,} sequences (10th event 06-18h), "
          f"valid {counts.valid[0]:,} of {counts.valid[1]:,} (day), test {counts.test[0]:,} of {counts.test[1]:,} (night)")
    night = _runs(args.night_run)
    print(f"night LLM runs: {len(night) or 'none (the LLM row awaits a run with the night scenario)'}")
    shift_config = config.model_copy(update={
        "title": "Environment shift: trained on day scenes (06-18h), tested on night", "fractions": (1.0,),
        "sources": ("llm", "markov") if night else ("markov",)})
    started = time.time()
    cells = run_experiment(shifted, night, shift_config, oracle=scene_oracle(split),
                           results_path=args.out / "experiment-shift.json", progress=progress)
    _table(f"{args.model}: environment shift ({time.time() - started:.0f} s)", summarise(cells, config.metric))
    return 0


if __name__ == "__main__":
    sys.exit(main())
