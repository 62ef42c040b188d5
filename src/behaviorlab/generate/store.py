"""The run's SQLite store: profiles, prompts, attempts with completions, issues, accepted sequences.

Each batch of attempts is committed in one transaction, so an interrupted run loses at most the
batch in flight and a re-run continues from what is committed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from behaviorlab.errors import GenerationError

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
  idx INTEGER PRIMARY KEY, profile TEXT NOT NULL, grounding TEXT NOT NULL, messages TEXT NOT NULL,
  output_schema TEXT NOT NULL, compressed_tokens INTEGER NOT NULL, plain_tokens INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
  idx INTEGER NOT NULL, attempt INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,
  completion TEXT, failure TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, latency_s REAL,
  valid_before_repair INTEGER NOT NULL, PRIMARY KEY (idx, attempt));
CREATE TABLE IF NOT EXISTS issues (idx INTEGER NOT NULL, attempt INTEGER NOT NULL, message TEXT NOT NULL,
  repaired INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (idx INTEGER PRIMARY KEY, attempt INTEGER NOT NULL, events TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, requests INTEGER NOT NULL, wall_s REAL NOT NULL);
"""
FINGERPRINT, FORMAT = "fingerprint", "store format"
# What the stored prompts and groundings look like; a run stored in another format cannot be resumed
# (1: the LLM wrote (time bin, action) pairs; 2: the code fixes each event's time slot and the LLM
# writes codes only). Format 1 stores did not record their format.
STORE_FORMAT = 2


class RunStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(_TABLES)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def claim(self, fingerprint: str) -> None:
        """Bind the store to one configuration and dataset (`fingerprint`, which covers STORE_FORMAT);
        a different one, or a store written in another format, may not resume it."""
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get(FINGERPRINT, fingerprint) == fingerprint:
            with self._db:  # a store of format 2 made before the format was recorded gets it now
                self._db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                     [(FINGERPRINT, fingerprint), (FORMAT, str(STORE_FORMAT))])
            return
        if meta.get(FORMAT) == str(STORE_FORMAT):
            raise GenerationError(f"The run directory {self.path.parent} was started with other settings or data",
                                  hint="Re-run with the same command to resume it, or choose a new --out directory.")
        stored = f"store format {meta[FORMAT]}" if FORMAT in meta else "an older store format"
        raise GenerationError(
            f"The run directory {self.path.parent} was started with other settings or data, or written in {stored} "
            f"by an earlier behaviorlab (this one writes format {STORE_FORMAT}); it cannot be resumed",
            hint="Re-run with the command that started it if this behaviorlab made it; otherwise choose a new "
                 "--out directory, or delete this one to generate afresh.")

    # -- profiles and prompts ------------------------------------------------------------------
    def prepared(self) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT idx FROM profiles")}

    def add_profiles(self, rows: list[tuple[int, str, str, str, str, int, int]]) -> None:
        with self._db:
            self._db.executemany("INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def profile_rows(self) -> list[tuple[int, str, str, str, str, int, int]]:
        return self._db.execute("SELECT * FROM profiles ORDER BY idx").fetchall()

    # -- attempts ------------------------------------------------------------------------------
    def attempts_made(self) -> dict[int, int]:
        return dict(self._db.execute("SELECT idx, COUNT(*) FROM attempts GROUP BY idx"))

    def accepted(self) -> dict[int, list[Any]]:
        return {idx: json.loads(events) for idx, events in self._db.execute("SELECT idx, events FROM sequences ORDER BY idx")}

    def record_batch(self, attempts: list[dict[str, Any]], wall_s: float) -> None:
        """One transaction: every attempt of the batch with its issues and, when accepted, its sequence."""
        with self._db:
            for a in attempts:
                self._db.execute(
                    "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (a["idx"], a["attempt"], a["seed"], a["status"], a["completion"], a["failure"], a["prompt_tokens"],
                     a["completion_tokens"], a["latency_s"], int(a["valid_before_repair"])))
                self._db.executemany("INSERT INTO issues VALUES (?, ?, ?, ?)",
                                     [(a["idx"], a["attempt"], m, int(r)) for m, r in a["issues"]])
                if a["events"] is not None:
                    self._db.execute("INSERT INTO sequences VALUES (?, ?, ?)", (a["idx"], a["attempt"], json.dumps(a["events"])))
            self._db.execute("INSERT INTO batches (requests, wall_s) VALUES (?, ?)", (len(attempts), wall_s))

    def totals(self) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
            "COALESCE(SUM(valid_before_repair), 0), SUM(status = 'accepted'), SUM(status = 'rejected'), "
            "SUM(status = 'failed') FROM attempts").fetchone()
        wall = self._db.execute("SELECT COALESCE(SUM(wall_s), 0) FROM batches").fetchone()[0]
        issues = self._db.execute("SELECT message, repaired FROM issues").fetchall()
        return {"attempts": row[0], "prompt_tokens": row[1], "completion_tokens": row[2], "valid_before_repair": row[3],
                "accepted": row[4] or 0, "rejected": row[5] or 0, "failed": row[6] or 0, "llm_wall_s": wall,
                "issues": issues}
