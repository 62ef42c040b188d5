"""Loader speed and memory against pandas.read_csv of the same files, measured in the same run.

Each case runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own; the time is
the load call alone (imports excluded). Cases: ml-100k (RecBole .inter), SmartThings FR train.csv, and
a generated log of --events events (bench/generate_log.py: a CSV and a Parquet folder under /tmp, not the
repository). On the generated log the comparison is like for like (issue 15, section 7):
  pandas-checked  pandas.read_csv (ids as text) + to_datetime + the null/empty checks we make + distinct actions
  polars-bare     pl.read_csv alone (no parsing of times, no checks): our validation overhead is ours / this
  behaviorlab-parquet  our load of the Parquet file `data convert` writes from the CSV (written once per run,
                       timed as behaviorlab-convert): the target of "Parquet at least 5x faster than our CSV load"
  behaviorlab-parquet-arrival, polars-bare-parquet-arrival  the same rows written in the CSV's order (not grouped by
                       user, as convert wrote them before; timed as behaviorlab-convert-arrival): the baseline of grouping
  polars-bare-parquet  pl.read_parquet of that file (no checks): the floor of any load of it
  behaviorlab-parquet-foreign, polars-bare-parquet-foreign  the same for the Parquet folder generate_log.py
                       writes (plain polars parts, no behaviorlab metadata: every row is checked)

    .venv/bin/python bench/loaders.py [--datasets ../shared/datasets] [--events 10000000] [--repeats 3] [--clock cpu]

Other processes on the machine change absolute numbers; the ratios within one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generate_log import generate  # bench/ is on the path when this file runs as a script

REPO = Path(__file__).resolve().parents[1]
# wall: elapsed seconds. cpu: the process's CPU seconds, all threads: on a machine busy with other work, closer to
# what a load costs than elapsed time (on one free core, taskset -c 1, the two agree).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB.

    Linux's VmHWM belongs to the current program image; ru_maxrss would also carry the parent's peak
    across fork+exec (the parent has polars and numpy loaded after generating the CSV).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _pandas_checked(path: str, sep: str) -> int:
    """What our CSV load does, in pandas: ids as text, epoch seconds to UTC datetimes, every null or empty
    id and unparsable time found, the distinct actions listed."""
    import pandas as pd

    frame = pd.read_csv(path, sep=sep, dtype={"user_id": str, "action": str})
    times = pd.to_datetime(frame["timestamp"], unit="s", utc=True, errors="coerce")
    bad = frame["user_id"].isna() | (frame["user_id"].str.len() == 0) | frame["action"].isna()
    bad |= (frame["action"].str.len() == 0) | times.isna()
    if bad.any():
        raise SystemExit(f"{int(bad.sum())} bad rows in {path}")
    distinct = frame["action"].unique()  # the vocabulary our load builds
    return len(frame) if len(distinct) else 0


def _convert(csv: Path, grouped: bool) -> int:
    """What `behaviorlab data convert CSV OUT` does: the CSV checked in streaming passes, then streamed into Parquet
    grouped by user; or (not `grouped`) in the CSV's order, the file convert wrote before it grouped users."""
    from behaviorlab.datasets import scan, write_event_log
    from behaviorlab.sequences import grouped_by_user

    log = scan(csv)
    with tempfile.TemporaryDirectory(dir=csv.parent) as spill:
        write_event_log(grouped_by_user(log, Path(spill))[0] if grouped else log, converted_path(csv, grouped))
    return log.n_events


def _load_call(kind: str, path: str, pandas_sep: str):
    """The measured call of each loader kind (imports done before the clock starts)."""
    if kind.startswith("behaviorlab-convert"):
        return lambda: _convert(Path(path), grouped=kind == "behaviorlab-convert")
    if kind.startswith("behaviorlab"):
        from behaviorlab.datasets import load

        return lambda: load(path).n_events
    if kind.startswith("polars-bare"):
        import polars as pl

        if kind.startswith("polars-bare-parquet"):  # the file or the folder's parts read, nothing else
            return lambda: pl.scan_parquet(f"{path}/*.parquet" if Path(path).is_dir() else path).collect().height
        return lambda: pl.read_csv(path, separator=pandas_sep).height
    import pandas as pd

    if kind == "pandas-checked":
        return lambda: _pandas_checked(path, pandas_sep)
    return lambda: len(pd.read_csv(path, sep=pandas_sep))


def converted_path(csv: Path, grouped: bool = True) -> Path:
    return csv.with_name(f"{csv.stem}.converted{'' if grouped else '-arrival'}.parquet")


def run_case(kind: str, path: str, pandas_sep: str, clock: str) -> dict:
    """Runs inside the child: load once, report events, seconds (of `clock`) and peak RSS."""
    call = _load_call(kind, path, pandas_sep)
    timer = CLOCKS[clock]
    before = peak_rss_mb()
    start = timer()
    events = call()
    seconds = timer() - start
    return {"events": events, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": peak_rss_mb()}


def measure(kind: str, path: Path, pandas_sep: str = ",", clock: str = "wall") -> dict:
    command = [sys.executable, __file__, "--child", kind, str(path), pandas_sep, clock]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"{kind} on {path} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=REPO / ".." / "shared" / "datasets")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench"))
    parser.add_argument("--repeats", type=int, default=3, help="runs per loader and case; the median run is shown")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="what 'seconds' counts: elapsed time, or CPU time (for a machine busy with other work)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    big, folder = generate(args.out, args.events)
    plain = ("pandas", "behaviorlab")
    cases = [
        ("ml-100k", args.datasets / "movielens-100k" / "ml-100k.inter", "\t", plain),
        ("smartthings-fr train", args.datasets / "smartthings-fr" / "train.csv", ",", plain),
        (f"generated {args.events:,} events", big, ",", ("pandas-checked", "polars-bare", "behaviorlab")),
    ]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          "(polars uses every core; pandas.read_csv one, so a loaded machine hurts polars more)")
    print(f"seconds are {args.clock} seconds")
    print(f"{'case':<28} {'loader':<12} {'events':>12} {'seconds':>8} {'events/s':>12} {'peak RSS MB':>12} {'RSS before':>11}")
    for name, path, sep, kinds in cases:
        if not path.exists():
            print(f"{name:<28} skipped: {path} not found")
            continue
        results = _median_runs([(kind, path) for kind in kinds], sep, args.repeats, args.clock)
        for kind, r in results.items():
            print(f"{name:<28} {kind:<20} {r['events']:>12,} {r['seconds']:>8.3f} {r['events'] / r['seconds']:>12,.0f} "
                  f"{r['peak_rss_mb']:>12,.0f} {r['rss_before_mb']:>11,.0f}")
        ours, theirs = results["behaviorlab"], results[kinds[0]]
        target = " (target >= 1.0, like for like)" if kinds[0] == "pandas-checked" else " (a bare parse: not like for like)"
        print(f"{name:<28} speed vs {kinds[0]} x{theirs['seconds'] / ours['seconds']:.2f}{target}, "
              f"peak memory vs {kinds[0]} x{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}")
        if "polars-bare" in results:
            for kind in ("behaviorlab-convert", "behaviorlab-convert-arrival"):  # once each: they write the files read next
                convert = measure(kind, path, sep, args.clock)
                print(f"{name:<28} {kind:<20} {convert['events']:>12,} {convert['seconds']:>8.3f} "
                      f"{convert['events'] / convert['seconds']:>12,.0f} {convert['peak_rss_mb']:>12,.0f}")
            files = (("", converted_path(path)), ("-arrival", converted_path(path, grouped=False)), ("-foreign", folder))
            parquets = _median_runs([(f"{kind}{suffix}", file) for suffix, file in files
                                     for kind in ("behaviorlab-parquet", "polars-bare-parquet")], sep, args.repeats, args.clock)
            for kind, r in parquets.items():
                print(f"{name:<28} {kind:<20} {r['events']:>12,} {r['seconds']:>8.3f} "
                      f"{r['events'] / r['seconds']:>12,.0f} {r['peak_rss_mb']:>12,.0f}")
            for suffix, what in (("", "the file data convert writes"), ("-arrival", "the same rows in the CSV's order"),
                                 ("-foreign", "a foreign Parquet folder")):
                parquet, floor = parquets[f"behaviorlab-parquet{suffix}"], parquets[f"polars-bare-parquet{suffix}"]
                print(f"{name:<28} Parquet load ({what}) vs our CSV load x{ours['seconds'] / parquet['seconds']:.2f}"
                      f"{' (target >= 5)' if not suffix else ''}; a bare read of it vs our CSV load, the most any load of "
                      f"it can reach: x{ours['seconds'] / floor['seconds']:.2f}")
            print(f"{name:<28} validation overhead over a bare Polars parse x{ours['seconds'] / results['polars-bare']['seconds']:.2f} "
                  "(target <= 1.5)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


def _median_runs(cases: list[tuple[str, Path]], sep: str, repeats: int, clock: str) -> dict[str, dict]:
    """Each (kind, path) run `repeats` times, alternating between kinds so that load from other processes on
    the shared machine hits all alike; the median run of each kind."""
    runs: dict[str, list[dict]] = {kind: [] for kind, _ in cases}
    for _ in range(repeats):
        for kind, path in cases:
            runs[kind].append(measure(kind, path, sep, clock))
    return {kind: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for kind, r in runs.items()}


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(run_case(*sys.argv[2:])))
    else:
        main()
