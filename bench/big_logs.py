"""Logs larger than memory (issue 15, section 6): events/s and resident memory per event of each stage.

On a generated log of --events events (bench/generate_log.py: a partitioned Parquet folder and a CSV under
--out, reused when present), each stage runs in a fresh subprocess, so its peak RSS (VmHWM) is its own:
  inspect   `behaviorlab data inspect FOLDER` (streaming checks, summary, duplicate count): target < 2 GB RSS
  scan      datasets.scan(FOLDER): the checked lazy log (the streaming loading every lazy use starts from)
  convert   `behaviorlab data convert CSV OUT.parquet` (CSV streamed into Parquet)
  convert_dedup  the same with --drop-duplicates (one bucket of users deduplicated at a time); --duplicates F
            makes a fraction F of the big log's rows copies of others (bench/generate_log.py), so that there are
            some to remove
  load      datasets.load(FOLDER) of the first --subset events, in memory (the same generator and seed: the
            subset is the first parts of the big log without --duplicates)
  windows   sequences.windows(lazy, --window) of the subset's lazy log (checked before the clock)
  epoch     one MarkovModel (order 2) fit over --train-events events of --train-users users (counting every
            transition once is its one epoch)
RSS per event is (peak RSS - RSS before the call) / events; the anonymous RSS (heap) is also given, since a
memory-mapped CSV input counts in the peak RSS with its (droppable) file pages. Results go to --out/big_logs.jsonl, one line per
stage; a stage already there is not run again (--fresh runs all), so a stopped run resumes.

--bucket-rows N sets the events per bucket of users (schema.USER_BUCKET_ROWS, 20M) in every stage: the
per-bucket passes (inspect's summary and duplicate count, convert_dedup) hold one bucket at a time, so their
peak memory follows it; give each setting its own --out, the results are kept per stage.

    .venv/bin/python bench/big_logs.py [--events 100000000] [--subset 10000000] [--stages inspect,scan,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from generate_log import generate  # bench/ is on the path when this file runs as a script
from loaders import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]
STAGES = ("inspect", "scan", "convert", "convert_dedup", "load", "windows", "epoch")


def _stage_call(stage: str, paths: dict[str, str], window: int):
    """(the measured call, returning the events it handled) of a stage; imports are done before the clock."""
    from behaviorlab import schema
    from behaviorlab.cli import main
    from behaviorlab.datasets import load, scan
    from behaviorlab.models.markov import MarkovModel
    from behaviorlab.sequences import windows

    if paths["bucket_rows"] != "0":
        schema.USER_BUCKET_ROWS = int(paths["bucket_rows"])

    def cli(*args: str) -> int:
        code = main(list(args))
        if code != 0:
            raise SystemExit(f"behaviorlab {' '.join(args)} exited with {code}")
        return int(paths["events"])  # the generated count: `inspect` checks it, `convert` prints it

    if stage == "epoch":
        log = load(paths["train"])  # loaded before the clock: the epoch is measured, not the load
        return lambda: MarkovModel().fit(log).unigram_counts_.sum()
    if stage == "windows":
        lazy = scan(paths["subset"])  # checked before the clock: windowing reads the source again from here

        def windowing() -> int:
            windows(lazy, window)
            return lazy.n_events

        return windowing
    return {
        "inspect": lambda: cli("data", "inspect", paths["folder"]),
        "scan": lambda: scan(paths["folder"]).n_events,
        "convert": lambda: cli("data", "convert", paths["csv"], paths["converted"]),
        "convert_dedup": lambda: cli("data", "convert", paths["csv"], paths["deduplicated"], "--drop-duplicates"),
        "load": lambda: load(paths["subset"]).n_events,
    }[stage]


def _sample_anonymous_rss(peak: dict[str, float], stop: threading.Event) -> None:
    """The peak of RssAnon (heap, not file pages) every 50 ms: a memory-mapped input (polars maps CSV files)
    counts in the peak RSS with its pages, which the kernel can drop, so the two are reported apart."""
    while not stop.is_set():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                peak["anon"] = max(peak["anon"], int(line.split()[1]) / 1024)
        stop.wait(0.05)


def run_stage(stage: str, paths: dict[str, str], window: int) -> dict:
    """Runs inside the child."""
    call = _stage_call(stage, paths, window)
    before = peak_rss_mb()
    peak, stop = {"anon": 0.0}, threading.Event()
    sampler = threading.Thread(target=_sample_anonymous_rss, args=(peak, stop), daemon=True)
    sampler.start()
    start = time.perf_counter()
    events = int(call())
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    return {"stage": stage, "events": events, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak_rss_mb(),
            "peak_anon_rss_mb": peak["anon"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000_000)
    parser.add_argument("--subset", type=int, default=10_000_000, help="events of the in-memory stages (load, windows)")
    parser.add_argument("--train-events", type=int, default=2_000_000)
    parser.add_argument("--train-users", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench"))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--fresh", action="store_true", help="run every stage again")
    parser.add_argument("--duplicates", type=float, default=0.0, help="fraction of the big log's rows that repeat another row")
    parser.add_argument("--bucket-rows", type=int, default=0, help="events per bucket of users (0: the library's USER_BUCKET_ROWS)")
    args = parser.parse_args()
    csv, folder = generate(args.out, args.events, duplicates=args.duplicates)
    _, subset = generate(args.out, args.subset, csv=False)
    _, train = generate(args.out / f"train-{args.train_users}-users", args.train_events, users=args.train_users, csv=False)
    paths = {"folder": str(folder), "csv": str(csv), "converted": str(args.out / f"converted_{args.events}.parquet"),
             "deduplicated": str(args.out / f"deduplicated_{args.events}.parquet"),
             "subset": str(subset), "train": str(train), "events": str(args.events), "bucket_rows": str(args.bucket_rows)}
    results_file = args.out / "big_logs.jsonl"
    done = {} if args.fresh or not results_file.exists() else {
        r["stage"]: r for r in map(json.loads, results_file.read_text().splitlines())}
    for stage in args.stages.split(","):
        if stage in done:
            continue
        print(f"running {stage} (load average {os.getloadavg()[0]:.1f})", flush=True)
        command = [sys.executable, __file__, "--child", stage, json.dumps(paths), str(args.window)]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
        if result.returncode != 0:
            raise SystemExit(f"{stage} failed:\n{result.stderr[-4000:]}")
        done[stage] = json.loads(result.stdout.strip().splitlines()[-1]) | {"load_average": os.getloadavg()[0]}
        with open(results_file, "a") as handle:
            handle.write(json.dumps(done[stage]) + "\n")
    print(f"{'stage':<13} {'events':>12} {'seconds':>9} {'events/s':>12} {'peak RSS MB':>12} {'anon RSS MB':>12} "
          f"{'RSS B/event':>12} {'load avg':>9}")
    for stage in STAGES:
        if stage in done:
            r = done[stage]
            per_event = max(0.0, r["peak_rss_mb"] - r["rss_before_mb"]) * 2**20 / r["events"]
            anon = f"{r['peak_anon_rss_mb']:>12,.0f}" if "peak_anon_rss_mb" in r else f"{'-':>12}"
            print(f"{stage:<13} {r['events']:>12,} {r['seconds']:>9.1f} {r['events'] / r['seconds']:>12,.0f} "
                  f"{r['peak_rss_mb']:>12,.0f} {anon} {per_event:>12.1f} {r['load_average']:>9.1f}")
    if "convert" in done and "convert_dedup" in done:
        plain, dedup = done["convert"], done["convert_dedup"]
        print(f"convert --drop-duplicates vs plain convert: {dedup['seconds'] / plain['seconds']:.2f}x the time, "
              f"{dedup['peak_rss_mb'] / plain['peak_rss_mb']:.2f}x the peak RSS, "
              f"{dedup['peak_anon_rss_mb'] / plain['peak_anon_rss_mb']:.2f}x the anonymous RSS")
    if "inspect" in done:
        print(f"data inspect peak RSS {done['inspect']['peak_rss_mb']:,.0f} MB on {done['inspect']['events']:,} events "
              "(target < 2,048 MB)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(run_stage(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
