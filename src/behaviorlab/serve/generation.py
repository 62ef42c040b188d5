"""/generate: one synthetic sequence per request, made by one worker thread through the configured LLM backend.

The embedded model decodes one request at a time (DESIGN: keep one loaded model per process), so requests
wait in a bounded queue; a full queue answers 429 at once with a Retry-After estimated from the recent
time per sequence. Each sequence is made as a generation run makes its sequence (generate.run.generate_sequence).

A reload (SIGHUP) builds a new backend from the same settings (a replaced .gguf file, a restarted server) beside
the old one and swaps it in: the sequence in progress finishes on the old backend, which is closed after it, and
the next ones use the new one; a backend that fails to build leaves the old one serving.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from behaviorlab.schema import EventLog, Profile
from behaviorlab.serve.config import GenerationServiceConfig

_STOP = object()


class QueueFull(Exception):
    """The /generate queue holds queue_size requests already; `retry_after_s` is when to try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class GenerationJob:
    index: int  # the population profile whose grounding and seeds the sequence uses
    profile: Profile
    persona_text: str | None


class GenerationService:
    """The run context (priors and population of the grounding log), the backend and the worker."""

    def __init__(self, log: EventLog, config: GenerationServiceConfig,
                 backend_factory: Callable[[], Any] | None = None) -> None:
        from behaviorlab.generate.run import RunContext
        from behaviorlab.llm import create_backend

        self.config = config
        self.context = RunContext(log, config.generate)
        self._make_backend = backend_factory or (lambda: create_backend(config.generate.llm))
        self.backend = self._make_backend()
        self.loaded_at = time.time()
        self._lock = threading.Lock()  # guards backend and _in_use between the worker and a reload
        self._in_use: Any = None  # the backend of the sequence in progress
        self._jobs: queue.Queue = queue.Queue(maxsize=config.queue_size)
        self._seconds_per_job = 10.0  # until the first sequence is timed: a guess for Retry-After
        self._worker = threading.Thread(target=self._work, name="behaviorlab-generate", daemon=True)
        self._worker.start()

    @property
    def population(self) -> list[Profile]:
        return self.context.population.profiles

    @property
    def real_users(self) -> set[str]:
        return set(self.context.priors.users)

    def depth(self) -> int:
        """Requests waiting (not counting the one being generated)."""
        return self._jobs.qsize()

    def submit(self, job: GenerationJob) -> asyncio.Future:
        """Queue `job`; its future resolves to a SequenceResult. Raises QueueFull when the queue is full."""
        future: Future = Future()
        try:
            self._jobs.put_nowait((job, future))
        except queue.Full:
            waiting = self.config.queue_size + 1  # the queue and the one in progress
            raise QueueFull(max(1, math.ceil(waiting * self._seconds_per_job))) from None
        return asyncio.wrap_future(future)

    def _work(self) -> None:
        from behaviorlab.generate.run import generate_sequence

        while (item := self._jobs.get()) is not _STOP:
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue  # the client went away before its turn
            started = time.perf_counter()
            with self._lock:
                backend = self._in_use = self.backend
            try:
                future.set_result(generate_sequence(self.context, job.index, job.profile, backend, job.persona_text))
            except BaseException as exc:  # noqa: BLE001 - handed to the request that waits for it
                future.set_exception(exc)
            with self._lock:
                self._in_use = None
                retired = backend is not self.backend
            if retired:  # a reload swapped it out while this sequence was being made
                backend.close()
            # an exponential average: Retry-After follows the backend's recent speed
            self._seconds_per_job = 0.7 * self._seconds_per_job + 0.3 * (time.perf_counter() - started)

    def reload_backend(self) -> None:
        """Build a new backend and swap it in (see the module docstring); blocking, so called off the event loop.
        Raises what building it raised, with the old backend still serving."""
        new = self._make_backend()
        with self._lock:
            old, self.backend = self.backend, new
            self.loaded_at = time.time()
            idle = self._in_use is not old
        if idle and old is not new:  # else the worker closes it once its sequence is done
            old.close()

    def close(self) -> None:
        """Finish the sequence in progress, drop the waiting ones' workers, close the backend."""
        while True:
            try:
                _, future = self._jobs.get_nowait()
                future.cancel()
            except queue.Empty:
                break
        self._jobs.put(_STOP)
        self._worker.join(timeout=600)
        self.backend.close()
