"""Micro-batching: concurrent /predict requests to one model answered by one forward pass.

The first request of a batch waits at most `max_wait_ms` for company, a batch holds at most `max_batch`
requests, and requests that arrive while a forward pass runs form the next batch, so the batch size
follows the load. Forward passes run on one compute thread (shared by every model of a set), so the event
loop keeps accepting requests. With batching off each request is its own forward pass on that thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from behaviorlab.serve.config import BatchingConfig

Ranked = list[tuple[str, float]]
_STOP = object()


@dataclass(frozen=True)
class Pending:
    history: Sequence[str]
    k: int
    context: Mapping[str, str] | None
    future: asyncio.Future


class MicroBatcher:
    """Batches one model's predictions; `on_batch(size)` hears the size of every forward pass."""

    def __init__(self, model: Any, config: BatchingConfig, executor: Executor, on_batch: Callable[[int], None]) -> None:
        self.model = model  # a NextBehaviorModel: predict_next_batch(histories, ks, contexts)
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
        """Requests waiting for a forward pass."""
        return self._queue.qsize() if self._queue is not None else 0

    async def predict(self, history: Sequence[str], k: int, context: Mapping[str, str] | None) -> Ranked:
        """The ranked next actions of one checked request."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            [ranked] = await loop.run_in_executor(self.executor, self._forward, [history], [k], [context])
            return ranked
        # Queued before the first await: a reload that swaps the set after this line still answers it here.
        pending = Pending(history, k, context, loop.create_future())
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
                        item = self._queue.get_nowait()
                    else:
                        item = await asyncio.wait_for(self._queue.get(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            await self._answer(batch)

    async def _answer(self, batch: list[Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            ranked = await loop.run_in_executor(self.executor, self._forward, [p.history for p in batch],
                                                [p.k for p in batch], [p.context for p in batch])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        for pending, result in zip(batch, ranked, strict=True):
            if not pending.future.done():  # a client that went away cancelled its future
                pending.future.set_result(result)

    def _forward(self, histories: list[Sequence[str]], ks: list[int], contexts: list[Mapping[str, str] | None]) -> list[Ranked]:
        self.on_batch(len(histories))
        return self.model.predict_next_batch(histories, ks, contexts)
