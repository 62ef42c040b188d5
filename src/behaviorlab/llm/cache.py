"""An on-disk completions cache (SQLite) and the backend decorator that consults it.

`CachedBackend` wraps any backend: requests already answered are served from disk (marked `cached`,
costing no tokens); the rest go to the wrapped backend in chunks, and each chunk's completions are
stored as soon as it returns, so an interrupted run keeps what it finished. Failures are not stored:
the next run tries them again. The key is `ChatRequest.cache_key(backend, identity)`, where identity
is the backend's `cache_identity` (model file, server URL) when it has one, else its model name.

Requests without a seed at temperature > 0 are random draws; once cached, a repeat returns the same
draw. Give each request its own seed to get distinct samples that are also reproducible.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from behaviorlab.errors import LLMError
from behaviorlab.llm.base import ChatRequest, ChatResult, Completion, LLMBackend
from behaviorlab.progress import ProgressReporter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    finish_reason TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


_OPEN_TIMEOUT_S = 30.0


class ResponseCache:
    """Completions by key in one SQLite file. WAL mode lets several processes read and write it at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            yield self._connection

    def _open(self) -> sqlite3.Connection:
        # Switching a fresh file to WAL takes a lock that SQLite's busy timeout does not wait for, so
        # processes opening the same new cache at once can see "database is locked": retry briefly.
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=_OPEN_TIMEOUT_S, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute(_SCHEMA)
                connection.commit()
                return connection
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise LLMError(f"Cannot open the completions cache {self.path}: {exc}",
                                   hint="Check that the cache folder is writable, or run with --no-cache.") from exc
                time.sleep(0.05)
            except sqlite3.Error as exc:
                raise LLMError(f"Cannot open the completions cache {self.path}: {exc}",
                               hint="Check that the cache folder is writable, or run with --no-cache.") from exc

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        unique = list(dict.fromkeys(keys))
        with self._db() as db:
            for start in range(0, len(unique), 500):  # SQLite caps the number of bound parameters
                chunk = unique[start:start + 500]
                rows = db.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, latency_s, finish_reason FROM completions "
                    f"WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
                for key, text, prompt_tokens, completion_tokens, latency_s, finish_reason in rows:
                    found[key] = Completion(text, prompt_tokens, completion_tokens, latency_s, finish_reason, cached=True)
        return found

    def put_many(self, items: Sequence[tuple[str, Completion]]) -> None:
        """Store completions in one transaction: all of them become visible together, or none."""
        now = time.time()
        with self._db() as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(key, c.text, c.prompt_tokens, c.completion_tokens, c.latency_s, c.finish_reason, now)
                 for key, c in items])

    def __len__(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM completions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class CachedBackend:
    """Any backend, with answers already on disk served from there."""

    def __init__(self, inner: LLMBackend, cache: ResponseCache, chunk_size: int = 16) -> None:
        self.inner = inner
        self.cache = cache
        self.chunk_size = chunk_size
        self.name = inner.name
        self.model = inner.model

    def __repr__(self) -> str:
        return f"CachedBackend({self.inner!r}, cache={str(self.cache.path)!r})"

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        identity = str(getattr(self.inner, "cache_identity", self.inner.model))
        keys = [request.cache_key(self.inner.name, identity) for request in requests]
        hits = self.cache.get_many(keys)
        results: list[ChatResult | None] = [
            ChatResult(request, completion=hits[key]) if key in hits else None for request, key in zip(requests, keys)]
        missing = [index for index, result in enumerate(results) if result is None]
        done = len(requests) - len(missing)
        if progress is not None and done:
            progress(done, len(requests), {"cached": done})
        for start in range(0, len(missing), self.chunk_size):
            chunk = missing[start:start + self.chunk_size]
            fresh = self.inner.complete([requests[index] for index in chunk], _offset(progress, done, len(requests)))
            self.cache.put_many([(keys[index], result.completion) for index, result in zip(chunk, fresh)
                                 if result.completion is not None])
            for index, result in zip(chunk, fresh):
                results[index] = result
            done += len(chunk)
        answered = [result for result in results if result is not None]
        assert len(answered) == len(requests), "every request is answered from the cache or by the wrapped backend"
        return answered

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def close(self) -> None:
        self.inner.close()
        self.cache.close()


def _offset(progress: ProgressReporter | None, before: int, total: int) -> ProgressReporter | None:
    """Report a chunk's progress as progress through the whole batch."""
    if progress is None:
        return None

    def report(done: int, _chunk_total: int, info: Mapping[str, float | str] | None = None) -> None:
        progress(before + done, total, info)

    return report
