"""A synthetic event log of N events (user_id,timestamp,action), written in bounded memory.

Events are made and written CHUNK at a time, so memory stays at one chunk whatever N is: the CSV grows
by appending, and the Parquet copy is a plain folder of part-NNNNN.parquet files, one per chunk. Both
are deterministic for a seed; a run stopped midway resumes at the first chunk it has not finished
(each part is written under a temporary name and renamed; the CSV is cut back to its last whole chunk).

    .venv/bin/python bench/generate_log.py --events 100000000 --out /tmp/behaviorlab-bench [--no-csv]

Users are u0..u<users-1>, actions a0..a<actions-1> drawn with a Zipf-like skew (a few actions are
common, as in real logs), times are epoch seconds in 2020-2023. With --duplicates F, a fraction F of each
chunk's rows are copies of other rows of that chunk, shuffled in (what `data convert --drop-duplicates`
removes); the files' names then end in _dupF.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

CHUNK = 5_000_000


def _chunk(index: int, size: int, users: int, actions: int, seed: int, duplicates: float) -> pl.DataFrame:
    rng = np.random.default_rng([seed, index])
    copies = round(size * duplicates)
    fresh = size - copies
    # Ranks 1..actions with weight 1/rank**0.8: a long-tailed action distribution.
    weights = 1.0 / np.arange(1, actions + 1) ** 0.8
    frame = pl.DataFrame({
        "user_id": "u" + pl.Series(rng.integers(0, users, fresh)).cast(pl.String),
        "timestamp": rng.integers(1_580_000_000, 1_700_000_000, fresh),
        "action": "a" + pl.Series(rng.choice(actions, fresh, p=weights / weights.sum())).cast(pl.String),
    })
    if not copies:
        return frame
    copied = frame[rng.integers(0, fresh, copies)]
    return pl.concat([frame, copied])[rng.permutation(size)]


def generate(out: Path, events: int, *, users: int = 1_000_000, actions: int = 10_000, seed: int = 0,
             csv: bool = True, chunk: int = CHUNK, duplicates: float = 0.0) -> tuple[Path | None, Path]:
    """(the CSV or None, the Parquet folder) of `events` events under `out`, reusing finished chunks; a
    fraction `duplicates` of them repeat other rows."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"events_{events}" + (f"_dup{duplicates:g}" if duplicates else "")
    csv_path = out / f"{name}.csv" if csv else None
    folder = out / f"{name}.parquet"
    folder.mkdir(exist_ok=True)
    progress = out / f"{name}.progress.json"  # chunks done, and the CSV size after the last one
    state = json.loads(progress.read_text()) if progress.is_file() else {"chunks": 0, "csv_bytes": 0}
    if csv_path is not None:
        with open(csv_path, "ab") as handle:
            handle.truncate(state["csv_bytes"])  # drop a chunk that was cut midway
    n_chunks = -(-events // chunk)
    for index in range(state["chunks"], n_chunks):
        frame = _chunk(index, min(chunk, events - index * chunk), users, actions, seed, duplicates)
        part = folder / f"part-{index:05d}.parquet"
        frame.write_parquet(part.with_suffix(".tmp"), compression="zstd")
        part.with_suffix(".tmp").replace(part)
        if csv_path is not None:
            with open(csv_path, "ab") as handle:
                frame.write_csv(handle, include_header=index == 0)
        state = {"chunks": index + 1, "csv_bytes": csv_path.stat().st_size if csv_path else 0}
        progress.write_text(json.dumps(state))
        print(f"chunk {index + 1}/{n_chunks} written", flush=True)
    return csv_path, folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-bench"))
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-csv", action="store_true", help="write only the Parquet folder")
    parser.add_argument("--duplicates", type=float, default=0.0, help="fraction of rows that repeat another row")
    args = parser.parse_args()
    csv_path, folder = generate(args.out, args.events, users=args.users, actions=args.actions, seed=args.seed,
                                csv=not args.no_csv, duplicates=args.duplicates)
    print(f"wrote {csv_path or '(no CSV)'} and {folder}")


if __name__ == "__main__":
    main()
