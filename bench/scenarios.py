"""What synthetic data is worth, by the honest protocol (evaluate/scenarios.py), on two real domains.

    .venv/bin/python bench/scenarios.py [--domain fr|foursquare] [--data DIR] [--tables main,night,weekend,cold]
        [--llm-run RUN ...] [--shift-run NAME=RUN ...] [--out DIR] [--model gru4rec] [--seeds 0,1,2,3,4]

Domains (both from ../shared/datasets/):
- fr: SmartThings FR, next device-control, the published split (predict the 10th event from the first 9);
  shifts night (train on day scenes 06-18h, test on 18-06h) and weekend; headline NDCG@10.
- foursquare: Foursquare NYC, next venue category per user, one global temporal cut (last 10% of check-ins
  test, the 10% before valid); shift weekend (train on working-day check-ins, test on weekend ones); cold
  start (test only the users with at most 5 check-ins in train); headline HR@1 (BehaviorGen's).
Tables:
- main: real only, its oracle (real only on all the real training data), the real->real control, and each
  synthetic source (Markov fitted to the cell's real subset; the LLM runs given, grounded and ungrounded)
  at each fraction of the real training sequences (users);
- night / weekend: the shift; the oracle also trains on the real data of the test scene; the LLM runs must
  be grounded on the shift's training data and told the test scene (`--shift-run weekend=RUN`, generated
  with the scenario the shift names, e.g. `generate --scenario weekend`);
- cold: the main grid scored only on cold-start users (Foursquare).
Every gain is paired by seed with real only of the same subset, with a 95% t-interval over seeds, the share
of the gap to the oracle it closes, and whether it wins (evaluate/scenarios.py: WIN_RULE). Each --llm-run
must be grounded on exactly one cell's real subset: write them with `behaviorlab experiment --real DATA
--fractions F --seeds S --write-subsets DIR` and generate one run from each file (`--grounding none` for the
ablation). Results are resumable JSON files in --out, one per table; wall times are printed per table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
COLD_START_EVENTS = 5


@dataclass(frozen=True)
class Domain:
    folder: str
    unit: str  # how a shift keeps training data (evaluate/shift.py)
    shifts: tuple[str, ...]
    tables: tuple[str, ...]
    max_len: int  # history events the sequence model reads
    metric: str


DOMAINS = {
    "fr": Domain("smartthings-fr", "sequences", ("night", "weekend"), ("main", "night", "weekend"), 10, "NDCG@10"),
    "foursquare": Domain("foursquare-nyc", "events", ("weekend",), ("main", "weekend", "cold"), 20, "HR@1"),
}


def _table(title: str, summary: list[dict], wall_s: float) -> None:
    from behaviorlab.evaluate.scenarios import WIN_RULE, plain_summary, row_texts

    print(f"\n{title} ({wall_s:.0f} s)")
    metric = summary[0]["metric"]
    print(f"test {metric}, mean ± std over seeds; gain vs real only (same seed) with its 95% t-interval; "
          f"'none real_continued' = real, then real again (the control); {WIN_RULE}")
    header = (f"{'real data':>9} | {'source':<14} | {'scenario':<16} | {metric:>17} | {'gain [95% CI]':>30} | "
              f"{'gap':>6} | wins")
    print(header)
    print("-" * len(header))
    order = {"real_only": 0, "real_continued": 1}
    for r in sorted(summary, key=lambda r: (r["fraction"], order.get(r["scenario"], 2), r["source"] != "none",
                                            r["scenario"], r["source"])):
        texts = row_texts(r)
        print(f"{r['fraction']:>9.0%} | {r['source']:<14} | {r['scenario']:<16} | {r['mean']:.4f} ± {r['std']:.4f} | "
              f"{texts['gain']:>30} | {texts['gap']:>6} | {texts['wins']}")
    for note in dict.fromkeys(r["note"] for r in summary if r["note"]):
        print(f"note: {note}")
    for sentence in plain_summary(summary):
        print(sentence)


def _split(domain: str, data: Path):
    from behaviorlab.datasets import load
    from behaviorlab.sequences import published_split, temporal_split

    log = load(data)
    return published_split(log) if domain == "fr" else temporal_split(log, 0.1, 0.1)


def _cold_start(split):
    """The split with only the test examples of users who have at most COLD_START_EVENTS training events."""
    from behaviorlab.schema import USER
    from behaviorlab.sequences import SequenceSplit

    counts = dict(split.train.frame.group_by(USER).len().iter_rows())
    keep = [i for i, user in enumerate(split.test.user_ids) if counts.get(user, 0) <= COLD_START_EVENTS]
    return SequenceSplit(split.train, split.valid, split.test.take(keep)), len(keep), len(split.test)


def _without_copies(runs, split, config):
    """Each run without its sequences that copy a whole real sequence of the subset it was grounded on (the
    issue's "sample, do not copy", measured on the same runs), and how many were dropped."""
    from dataclasses import replace

    import polars as pl

    from behaviorlab.evaluate.scenarios import distinct_subsets
    from behaviorlab.schema import USER

    real = {s.log.digest(): {tuple(seq) for seq in s.log.action_sequences().values()}
            for s in distinct_subsets(split, config)}
    kept, dropped = [], 0
    for run in runs:
        copies = [user for user, seq in run.log.action_sequences().items()
                  if tuple(seq) in real.get(run.grounding_digest, set())]
        dropped += len(copies)
        kept.append(replace(run, log=run.log.filter(~pl.col(USER).is_in(copies))))
    return kept, dropped


def _shift_runs(specs: list[str] | None) -> dict[str, list[Path]]:
    runs: dict[str, list[Path]] = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--shift-run takes NAME=RUN (e.g. weekend=runs/weekend), got {spec!r}")
        runs.setdefault(name, []).append(Path(path))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", choices=sorted(DOMAINS), default="fr")
    parser.add_argument("--data", type=Path, help="The domain's dataset folder (default: ../shared/datasets/...).")
    parser.add_argument("--tables", help="Comma-separated: main, night, weekend, cold (default: the domain's).")
    parser.add_argument("--llm-run", type=Path, action="append",
                        help="Generation run for the main and cold tables, grounded on one cell's real subset; repeatable.")
    parser.add_argument("--shift-run", action="append", help="NAME=RUN: a run for the shift NAME; repeatable.")
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench-scenarios"))
    parser.add_argument("--model", default="gru4rec")
    parser.add_argument("--epochs", type=int, default=100, help="Most epochs per fit; early stopping decides.")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--fractions", default="0.05,0.1,0.25,1")
    parser.add_argument("--scenarios", default="real_only,real_continued,pretrain_augment,finetune_augment",
                        help="Scenarios (add synthetic_only, finetune_replace for all five).")
    parser.add_argument("--write-subsets", type=Path, help=(
        "Write each table's real training subsets (one Parquet file per (fraction, seed), under DIR/TABLE/) for "
        "`behaviorlab generate --data` to ground the LLM runs on, and stop."))
    parser.add_argument("--drop-copies", action="store_true", help=(
        "Drop from each LLM run the sequences that copy a whole real sequence of its grounding subset (results "
        "in files of their own, *-nocopy.json; the Markov source then matches the smaller runs)."))
    parser.add_argument("--markov-sequences", type=int, default=200,
                        help="Markov sequences per cell when no LLM run sets the count.")
    args = parser.parse_args()

    domain = DOMAINS[args.domain]
    data = args.data or DATASETS / domain.folder
    if not data.exists():
        print(f"{domain.folder} not found at {data}; pass --data.", file=sys.stderr)
        return 2
    tables = tuple(args.tables.split(",")) if args.tables else domain.tables
    unknown = [t for t in tables if t not in ("main", "cold", *domain.shifts)]
    if unknown:
        print(f"{args.domain} has no table {', '.join(unknown)}; choose from main, cold, {', '.join(domain.shifts)}",
              file=sys.stderr)
        return 2
    from behaviorlab.evaluate.scenarios import (
        LLM_SOURCES,
        ExperimentConfig,
        experiment_runs,
        run_experiment,
        summarise,
        write_subsets,
    )
    from behaviorlab.evaluate.shift import named_shift, scene_oracle, scene_split
    from behaviorlab.models.registry import model_class

    split = _split(args.domain, data)
    settings = {"epochs": args.epochs, "patience": args.patience, "threads": args.threads, "max_len": domain.max_len,
                "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    if args.model in ("gru4rec", "lstm"):
        settings["hidden_size"] = args.hidden_size
    # The training-loop settings exist only for neural models; a one-pass model (markov) takes none of them.
    accepted = model_class(args.model).config_class.model_fields
    ignored = sorted(key for key in settings if key not in accepted)
    if ignored:
        print(f"{args.model} takes no {', '.join(ignored)}: those settings are left out")
    settings = {key: value for key, value in settings.items() if key in accepted}
    args.out.mkdir(parents=True, exist_ok=True)

    def progress(done: int, total: int, info: dict | None = None) -> None:
        print(f"  [{done}/{total}] {time.strftime('%H:%M:%S')} {dict(info or {})}", flush=True)

    def run(title: str, table_split, runs, name: str, fractions: tuple[float, ...], oracle=None) -> None:
        given = tuple(s for s in LLM_SOURCES if any(r.source == s for r in runs))
        config = ExperimentConfig(title=title, predictor=args.model, predictor_settings=settings, metric=domain.metric,
                                  seeds=tuple(int(s) for s in args.seeds.split(",")),
                                  scenarios=tuple(args.scenarios.split(",")), fractions=fractions,
                                  sources=(*given, "markov"), markov_sequences=args.markov_sequences)
        if args.write_subsets is not None:
            for file in write_subsets(table_split, config, args.write_subsets / name):
                print(f"{file.path}: {file.users:,} users, {file.events:,} events, digest {file.digest}, cells "
                      + ", ".join(f"{f:g}/{s}" for f, s in file.cells))
            return
        if args.drop_copies and runs:
            runs, dropped = _without_copies(runs, table_split, config)
            name, title = f"{name}-nocopy", f"{title}, LLM copies of real sequences dropped ({dropped})"
        print(f"\n{title}: LLM sources {', '.join(given) or 'none (LLM rows left out)'}")
        started = time.time()
        cells = run_experiment(table_split, runs, config, oracle=oracle, results_path=args.out / f"{name}.json",
                               progress=progress)
        _table(f"{args.model} on {domain.folder}: {title}", summarise(cells, config.metric), time.time() - started)

    print(f"real: {split.train.n_users:,} train users/sequences ({split.train.n_events:,} events), "
          f"{len(split.valid):,} valid, {len(split.test):,} test examples")
    fractions = tuple(float(f) for f in args.fractions.split(","))
    main_runs = experiment_runs(args.llm_run or [])
    if "main" in tables:
        run("training scenarios", split, main_runs, f"experiment-{args.domain}", fractions)
    if "cold" in tables:
        cold, kept, total = _cold_start(split)
        # The lowest fraction and all the data (or the one fraction asked for): cold start asks what synthetic data does for users with
        # little history, which the main table's fractions already answer for the whole population.
        run(f"cold start: {kept:,} of {total:,} test examples, of users with at most {COLD_START_EVENTS} training "
            "check-ins", cold, main_runs, f"experiment-{args.domain}-cold",
            tuple(sorted({min(fractions), 1.0})) if len(fractions) > 1 else fractions)
    shift_runs = _shift_runs(args.shift_run)
    for name in (t for t in tables if t in domain.shifts):
        shift = named_shift(name)
        shifted, counts = scene_split(split, shift, domain.unit)
        print(f"\nshift {name}: train {counts.train[0]:,} of {counts.train[1]:,} users/sequences, valid "
              f"{counts.valid[0]:,} of {counts.valid[1]:,}, test {counts.test[0]:,} of {counts.test[1]:,}; LLM runs are "
              f"generated with --scenario {shift.scenario}")
        run(f"environment shift: {shift.description}", shifted, experiment_runs(shift_runs.get(name, [])),
            f"experiment-{args.domain}-shift-{name}", (1.0,), oracle=scene_oracle(split, shift, domain.unit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
