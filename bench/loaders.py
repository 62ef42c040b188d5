"""Loader speed and memory against pandas.read_csv of the same files, measured in the same run.

Each case runs in a fresh subprocess, so its peak resident memory (ru_maxrss) is its own; the time is
the load call alone (imports excluded). Cases: ml-100k (RecBole .inter), SmartThings FR train.csv, and
a generated CSV of --events events (user,timestamp,action; written under /tmp, not the repository).

    .venv/bin/python bench/loaders.py [--datasets ../shared/datasets] [--events 10000000] [--repeats 3]

Other processes on the machine change absolute numbers; the ratios within one run are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
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


def run_case(kind: str, path: str, pandas_sep: str) -> dict:
    """Runs inside the child: load once, report events, seconds and peak RSS."""
    if kind == "behaviorlab":
        from behaviorlab.datasets import load

        before = _peak_rss_mb()
        start = time.perf_counter()
        events = load(path).n_events
    else:
        import pandas as pd

        before = _peak_rss_mb()
        start = time.perf_counter()
        events = len(pd.read_csv(path, sep=pandas_sep))
    seconds = time.perf_counter() - start
    return {"events": events, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": _peak_rss_mb()}


def measure(kind: str, path: Path, pandas_sep: str = ",") -> dict:
    command = [sys.executable, __file__, "--child", kind, str(path), pandas_sep]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if result.returncode != 0:
        raise SystemExit(f"{kind} on {path} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def generate_csv(path: Path, events: int, seed: int = 0) -> Path:
    """user,timestamp,action with 100k users, 1k actions, epoch-second times (deterministic)."""
    import numpy as np
    import polars as pl

    if path.is_file() and path.stat().st_size > 0:
        return path
    rng = np.random.default_rng(seed)
    users = pl.Series("user", rng.integers(0, 100_000, events)).cast(pl.String)
    frame = pl.DataFrame({
        "user": "u" + users,
        "timestamp": rng.integers(1_600_000_000, 1_700_000_000, events),
        "action": "a" + pl.Series(rng.integers(0, 1_000, events)).cast(pl.String),
    })
    tmp = path.with_suffix(".tmp")
    frame.write_csv(tmp)
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=REPO / ".." / "shared" / "datasets")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench"))
    parser.add_argument("--repeats", type=int, default=3, help="runs per loader and case; the median run is shown")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    big = generate_csv(args.out / f"events_{args.events}.csv", args.events)
    # The generic loader reads user_id,timestamp,action; the generated file names them user,timestamp,action,
    # so it goes through a mapping file like a user's own CSV would (the TOML path is exercised by the CLI).
    mapped = args.out / f"events_{args.events}_mapped.csv"
    if not mapped.is_file():
        _, _, rest = big.read_bytes().partition(b"\n")
        mapped.write_bytes(b"user_id,timestamp,action\n" + rest)
    cases = [
        ("ml-100k", args.datasets / "movielens-100k" / "ml-100k.inter", "\t"),
        ("smartthings-fr train", args.datasets / "smartthings-fr" / "train.csv", ","),
        (f"generated {args.events:,} events", mapped, ","),
    ]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start "
          "(polars uses every core; pandas.read_csv one, so a loaded machine hurts polars more)")
    print(f"{'case':<28} {'loader':<12} {'events':>12} {'seconds':>8} {'events/s':>12} {'peak RSS MB':>12} {'RSS before':>11}")
    for name, path, sep in cases:
        if not path.exists():
            print(f"{name:<28} skipped: {path} not found")
            continue
        # Alternate the two loaders and keep each one's median run, so load from other processes
        # on the shared machine hits both alike.
        runs: dict[str, list[dict]] = {"pandas": [], "behaviorlab": []}
        for _ in range(args.repeats):
            for kind, kind_runs in runs.items():
                kind_runs.append(measure(kind, path, sep))
        results = {kind: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for kind, r in runs.items()}
        for kind, r in results.items():
            print(f"{name:<28} {kind:<12} {r['events']:>12,} {r['seconds']:>8.3f} {r['events'] / r['seconds']:>12,.0f} "
                  f"{r['peak_rss_mb']:>12,.0f} {r['rss_before_mb']:>11,.0f}")
        ours, theirs = results["behaviorlab"], results["pandas"]
        print(f"{name:<28} speed vs pandas x{theirs['seconds'] / ours['seconds']:.2f}, "
              f"peak memory vs pandas x{ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(run_case(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        main()
