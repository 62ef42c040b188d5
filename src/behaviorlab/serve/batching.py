"""Micro-batching: concurrent requests to one model answered by one batched call (a forward pass).

The first request of a batch waits at most `max_wait_ms` for company, a batch holds at most `max_batch`
requests, and requests that arrive while a batch is computed form the next one, so the batch size follows
the load. Batches run on one compute thread (shared by every model of a set), so the event loop keeps
accepting requests. With batching off each request is its own call on that thread. /predict batches
histories (`predict_batch`), /score sequences (`score_batch`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from behaviorlab.serve.config import BatchingConfig

Item = TypeVar("Item")
Result = TypeVar("Result")
Ranked = list[tuple[str, float]]
_STOP = object()


@dataclass(frozen=True)
class PredictItem:
    """One checked /predict request."""

    history: Sequence[str]
    k: int
    context: Mapping[str, str] | None


@dataclass(frozen=True)
class Scored:
    """One /score answer: the surprisal of each event and their aggregate."""

    event_scores: list[float]
    sequence_score: float


def predict_batch(model: Any, items: list[PredictItem]) -> list[Ranked]:
    """The ranked next actions of each request, from one call of a NextBehaviorModel."""
    return model.predict_next_batch([i.history for i in items], [i.k for i in items], [i.context for i in items])


def score_batch(detector: Any, sequences: list[Any]) -> list[Scored]:
    """Each ContextSequence's event surprisals and sequence score, from one call of a SequenceAnomalyDetector."""
    surprisals = detector.event_surprisals(sequences)
    totals = detector.aggregate_scores(surprisals)
    return [Scored([float(v) for v in s], float(t)) for s, t in zip(surprisals, totals, strict=True)]


@dataclass(frozen=True)
class _Pending(Generic[Item]):
    item: Item
    future: asyncio.Future


class MicroBatcher(Generic[Item, Result]):
    """Batches one model's requests: `run(items) -> results` (same order) answers a batch on `executor`;
    `on_batch(size)` hears the size of every call."""

    def __init__(self, run: Callable[[list[Item]], list[Result]], config: BatchingConfig, executor: Executor,
                 on_batch: Callable[[int], None]) -> None:
        self.run = run
        self.config = config
        self.executor = executor
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start collecting (on the running event loop)."""
        if self.config.enabled:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._collect())

    def depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, item: Item) -> Result:
        """The answer to one checked request."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            [result] = await loop.run_in_executor(self.executor, self._call, [item])
            return result
        # Queued before the first await: a reload that swaps the set after this line still answers it here.
        pending = _Pending(item, loop.create_future())
        self._queue.put_nowait(pending)
        return await pending.future

    async def close(self) -> None:
        """Answer every request queued so far, then stop (a reload retires the old set's batchers this way)."""
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(_STOP)
            await self._task

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = loop.time() + self.config.max_wait_ms / 1000
            while len(batch) < self.config.max_batch:
                try:
                    if self._queue.qsize():  # already here: take it without waiting
                        pending = self._queue.get_nowait()
                    else:
                        pending = await asyncio.wait_for(self._queue.get(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    break
                if pending is _STOP:
                    stopping = True
                    break
                batch.append(pending)
            await self._answer(batch)

    async def _answer(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self._call, [p.item for p in batch])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():  # a client that went away cancelled its future
                pending.future.set_result(result)

    def _call(self, items: list[Item]) -> list[Result]:
        self.on_batch(len(items))
        return self.run(items)
