"""The run's SQLite store: profiles and their prompts, attempts with completions, issues, accepted sequences.

A profile makes `slots` sequences (one unless `sequences_per_profile` says more), each from its own prompt
and requests; a sequence is addressed by (profile, slot). Each batch of attempts is committed in one
transaction, so an interrupted run loses at most the batch in flight and a re-run continues from what is
committed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from behaviorlab.errors import GenerationError
from behaviorlab.llm.base import ChatMessage

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
  idx INTEGER PRIMARY KEY, profile TEXT NOT NULL, grounding TEXT NOT NULL, messages TEXT NOT NULL,
  output_schema TEXT NOT NULL, compressed_tokens INTEGER NOT NULL, plain_tokens INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
  idx INTEGER NOT NULL, slot INTEGER NOT NULL, attempt INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,
  completion TEXT, failure TEXT, prompt_tokens INTEGER, prefix_cached_tokens INTEGER, completion_tokens INTEGER,
  latency_s REAL, valid_before_repair INTEGER NOT NULL, PRIMARY KEY (idx, slot, attempt));
CREATE TABLE IF NOT EXISTS issues (idx INTEGER NOT NULL, slot INTEGER NOT NULL, attempt INTEGER NOT NULL,
  message TEXT NOT NULL, repaired INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (idx INTEGER NOT NULL, slot INTEGER NOT NULL, attempt INTEGER NOT NULL,
  events TEXT NOT NULL, PRIMARY KEY (idx, slot));
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, requests INTEGER NOT NULL, wall_s REAL NOT NULL);
"""
FINGERPRINT, FORMAT = "fingerprint", "store format"
# What the stored prompts, groundings and attempts look like; a run stored in another format cannot be
# resumed (1: the LLM wrote (time bin, action) pairs; 2: the code fixes each event's time slot and the LLM
# writes codes only; 3: a profile may make several sequences, attempts are kept per sequence). Format 1
# stores did not record their format.
STORE_FORMAT = 3

SequenceKey = tuple[int, int]  # (profile index, slot)


@dataclass(frozen=True)
class GroundingRecord:
    """What the store keeps of a grounding: enough to check a completion again, on resume included."""

    exemplars: tuple[str, ...]  # keys of the real episodes shown
    habits: tuple[tuple[str, str, int], ...]
    legend: tuple[str, ...]
    skeletons: tuple[tuple[tuple[int, int], ...], ...] | None  # per slot: (weekday, hour bin) of each event
    redundant_skipped: int

    @classmethod
    def from_json(cls, text: str) -> GroundingRecord:
        raw = json.loads(text)
        skeletons = raw["skeletons"]
        return cls(tuple(raw["exemplars"]), tuple(tuple(h) for h in raw["habits"]), tuple(raw["legend"]),
                   tuple(tuple(tuple(s) for s in slots) for slots in skeletons) if skeletons is not None else None,
                   raw["redundant_skipped"])

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class PreparedProfile:
    """One profile as the store holds it: the sampled profile, its grounding and the prompt sent for it."""

    idx: int
    profile: str  # Profile.to_json()
    grounding: GroundingRecord
    messages: tuple[tuple[ChatMessage, ...], ...]  # the prompt of each slot
    output_schema: dict[str, Any]
    compressed_tokens: int  # the prompts' tokens as sent, and as plain JSON would have cost (compress.tokens)
    plain_tokens: int

    @property
    def slots(self) -> int:
        """How many sequences the profile makes."""
        return len(self.messages)


@dataclass(frozen=True)
class AttemptRecord:
    """One request for one sequence: what came back, what it cost, and its check."""

    idx: int
    slot: int
    attempt: int
    seed: int
    status: Literal["accepted", "rejected", "failed"]
    completion: str | None
    failure: str | None
    prompt_tokens: int | None
    prefix_cached_tokens: int | None  # of prompt_tokens, read from the server's KV cache
    completion_tokens: int | None
    latency_s: float | None
    valid_before_repair: bool
    issues: tuple[tuple[str, bool], ...]  # (message, repaired)
    events: list[list[Any]] | None  # [[action, weekday, hour bin], ...] when accepted

    @property
    def key(self) -> SequenceKey:
        return self.idx, self.slot


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
        if meta.get(FINGERPRINT, fingerprint) == fingerprint and meta.get(FORMAT, str(STORE_FORMAT)) == str(STORE_FORMAT):
            with self._db:
                self._db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                     [(FINGERPRINT, fingerprint), (FORMAT, str(STORE_FORMAT))])
            return
        if meta.get(FORMAT) == str(STORE_FORMAT):
            raise GenerationError(f"The run directory {self.path.parent} was started with other settings or data",
                                  hint="Re-run with the same command to resume it, or choose a new --out directory.")
        stored = f"store format {meta[FORMAT]}" if FORMAT in meta else "an older store format"
        raise GenerationError(
            f"The run directory {self.path.parent} was written in {stored} by an earlier behaviorlab (this one "
            f"writes format {STORE_FORMAT}); it cannot be resumed",
            hint="Its synthetic.parquet and manifest.json stay readable by `evaluate-synthetic` and `experiment`; "
                 "to generate more, choose a new --out directory, or delete this one to generate afresh.")

    # -- profiles and prompts ------------------------------------------------------------------
    def prepared(self) -> set[int]:
        return {r[0] for r in self._db.execute("SELECT idx FROM profiles")}

    def add_profiles(self, profiles: list[PreparedProfile]) -> None:
        with self._db:
            self._db.executemany("INSERT INTO profiles VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (p.idx, p.profile, p.grounding.to_json(), json.dumps([[asdict(m) for m in slot] for slot in p.messages]),
                 json.dumps(p.output_schema), p.compressed_tokens, p.plain_tokens) for p in profiles])

    def profiles(self) -> list[PreparedProfile]:
        return [PreparedProfile(idx, profile, GroundingRecord.from_json(grounding),
                                tuple(tuple(ChatMessage(**m) for m in slot) for slot in json.loads(messages)),
                                json.loads(schema), compressed, plain)
                for idx, profile, grounding, messages, schema, compressed, plain
                in self._db.execute("SELECT * FROM profiles ORDER BY idx")]

    # -- attempts ------------------------------------------------------------------------------
    def attempts_made(self) -> dict[SequenceKey, int]:
        """Requests made per sequence."""
        return {(idx, slot): n for idx, slot, n in self._db.execute("SELECT idx, slot, COUNT(*) FROM attempts GROUP BY idx, slot")}

    def accepted(self) -> dict[SequenceKey, list[Any]]:
        return {(idx, slot): json.loads(events) for idx, slot, events
                in self._db.execute("SELECT idx, slot, events FROM sequences ORDER BY idx, slot")}

    def record_batch(self, attempts: list[AttemptRecord], wall_s: float) -> None:
        """One transaction: every attempt of the batch with its issues and, when accepted, its sequence."""
        with self._db:
            for a in attempts:
                self._db.execute("INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (a.idx, a.slot, a.attempt, a.seed, a.status, a.completion, a.failure, a.prompt_tokens,
                                  a.prefix_cached_tokens, a.completion_tokens, a.latency_s, int(a.valid_before_repair)))
                self._db.executemany("INSERT INTO issues VALUES (?, ?, ?, ?, ?)",
                                     [(a.idx, a.slot, a.attempt, m, int(r)) for m, r in a.issues])
                if a.events is not None:
                    self._db.execute("INSERT INTO sequences VALUES (?, ?, ?, ?)",
                                     (a.idx, a.slot, a.attempt, json.dumps(a.events)))
            self._db.execute("INSERT INTO batches (requests, wall_s) VALUES (?, ?)", (len(attempts), wall_s))

    def totals(self) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(prefix_cached_tokens), 0), "
            "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(valid_before_repair), 0), SUM(status = 'accepted'), "
            "SUM(status = 'rejected'), SUM(status = 'failed') FROM attempts").fetchone()
        wall = self._db.execute("SELECT COALESCE(SUM(wall_s), 0) FROM batches").fetchone()[0]
        issues = self._db.execute("SELECT message, repaired FROM issues").fetchall()
        return {"attempts": row[0], "prompt_tokens": row[1], "prefix_cached_tokens": row[2], "completion_tokens": row[3],
                "valid_before_repair": row[4], "accepted": row[5] or 0, "rejected": row[6] or 0, "failed": row[7] or 0,
                "llm_wall_s": wall, "issues": issues}
