"""Where a run's LLM requests (and an experiment's cells) are computed: in this process (`local`) or on Ray (`ray`).

An engine only builds the `LLMBackend` a run sends its batches to, so `run_generation` is the same code
for both and stays the one writer of its run store: the driver records every batch, the actors only
compute completions. With `ray`, each actor holds one backend built from the same `[llm]` config (an
embedded model, or an HTTP client of the OpenAI-compatible server on the actor's own node, e.g. vLLM at
http://127.0.0.1:8000/v1), and a batch is spread over the actors.

Same output as the local engine for the same seed: a request's output is fixed by the request and, when it
reuses the previous request's computed prefix (`ChatRequest.reuse_prefix`, a profile's later sequences),
by that previous request. So a batch is cut into groups that each start with a request computed whole,
and a group goes to one actor in order; a batch that continues the previous one's last group (a batch cut
by the completions cache) continues on the actor that computed it. Settings whose output is not fixed by
the seed locally (several slots, `prompt_cache`) are not fixed on Ray either.

A killed actor is restarted by Ray (its model loaded again) and its call retried: the call is a pure
function of its requests, so the retry gives the same completions and the run store sees nothing of it.
A call still failing after MAX_RESTARTS comes back as "connection" failures, which stop the run with the
finished work kept (generate.run: BACKEND_DOWN), to be resumed by the same command.

`map_tasks` is the engine of the experiment grid (evaluate.scenarios): one function over many items, each
a Ray task with the shared data sent once, the results handed back to the one caller that writes them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from behaviorlab.errors import ConfigError, LLMError
from behaviorlab.llm.base import ChatRequest, ChatResult, Failure, LLMBackend
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.factory import create_backend, with_cache
from behaviorlab.llm.http_backend import DEFAULT_IN_FLIGHT
from behaviorlab.progress import ProgressReporter

Engine = Literal["local", "ray"]
ENGINES: tuple[Engine, ...] = ("local", "ray")
MAX_RESTARTS = 3  # per actor, and retries per call: a node that keeps killing workers stops the run instead
RAY_HINT = "Install the Ray extra: pip install 'behaviorlab[ray]' (or use --engine local)."


def create_engine_backend(engine: str, config: LLMConfig, notify: Callable[[str], None] | None = None, *,
                          actors: int | None = None) -> LLMBackend:
    """The backend a run sends its batches to: `config`'s backend here (local), or spread over Ray actors
    (ray; `actors` of them, default: as many as the cluster's CPUs hold at `config`'s threads for an embedded
    model, one per node for a server), wrapped in the completions cache the driver alone writes."""
    if engine == "local":
        return create_backend(config, notify)
    if engine != "ray":
        raise ConfigError(f"Unknown engine {engine!r}", hint=f"Choose one of: {', '.join(ENGINES)}.")
    backend = RayBackend(config, actors)
    return with_cache(backend, config, backend.n_actors * (config.parallel or DEFAULT_IN_FLIGHT))


def ray_session() -> Any:
    """The `ray` module with a session: the one already started in this process, else the cluster named by
    $RAY_ADDRESS (as `ray job submit` sets it), else a local one on this machine's CPUs."""
    try:
        import ray
    except ImportError:
        raise ConfigError("The ray engine needs Ray, which is not installed", hint=RAY_HINT) from None
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=False, include_dashboard=False)
    return ray


class _BackendActor:
    """One backend in one Ray worker process; loaded once, sent whole groups of requests."""

    def __init__(self, config: LLMConfig) -> None:
        self._backend = create_backend(config)

    def describe(self) -> tuple[str, str, str, int]:
        backend = self._backend
        return backend.name, backend.model, str(getattr(backend, "cache_identity", backend.model)), os.getpid()

    def complete(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        return self._backend.complete(requests)

    def count_tokens(self, text: str) -> int:
        return self._backend.count_tokens(text)


class RayBackend:
    """An LLMBackend whose batches are computed by Ray actors, each holding one backend of `config`."""

    def __init__(self, config: LLMConfig, actors: int | None = None) -> None:
        ray = ray_session()
        self._ray = ray
        threads = config.resolved_threads() if config.backend == "embedded" else 1
        n = actors or _default_actors(ray, config.backend, threads)
        remote = ray.remote(num_cpus=threads, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(_BackendActor)
        # the driver keeps the cache; each actor's backend computes every request it gets
        inner = config.model_copy(update={"use_cache": False, "threads": threads if config.backend == "embedded"
                                          else config.threads})
        self.actors = [remote.options(scheduling_strategy="SPREAD").remote(inner) for _ in range(n)]
        try:
            described = ray.get([actor.describe.remote() for actor in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise LLMError(f"The Ray actors could not start the {config.backend} backend: {exc}",
                           hint="Run the same config with --engine local to see the backend's own error, and check "
                                "that behaviorlab and the model are installed on every node.") from None
        self.name, self.model, self.cache_identity, _ = described[0]
        self._last: int | None = None  # the actor of the previous call's last group

    @property
    def n_actors(self) -> int:
        return len(self.actors)

    def actor_pids(self) -> list[int]:
        """The process id of each actor (a restarted actor has a new one)."""
        return [pid for *_, pid in self._ray.get([actor.describe.remote() for actor in self.actors])]

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        """Groups of requests (each from a request computed whole to the next) spread over the actors; one
        result per request, in request order."""
        ray = self._ray
        assigned = self._assign(requests)
        calls = {self.actors[a].complete.remote([requests[i] for i in indices]): a
                 for a, indices in enumerate(assigned) if indices}
        results: list[ChatResult | None] = [None] * len(requests)
        pending, answered = list(calls), 0
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            actor = calls[done[0]]
            try:
                chunk = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                failure = Failure("connection", f"Ray actor {actor} failed after {MAX_RESTARTS} restarts: {exc}"[:400])
                chunk = [ChatResult(requests[i], failure=failure) for i in assigned[actor]]
            for index, result in zip(assigned[actor], chunk, strict=True):
                results[index] = result
            answered += len(chunk)
            if progress is not None:
                progress(answered, len(requests), {"waiting": f"{answered} of {len(requests)} requests back from "
                                                              f"{self.n_actors} Ray actors"})
        return [result for result in results if result is not None]

    def _assign(self, requests: Sequence[ChatRequest]) -> list[list[int]]:
        """Request indices per actor: each group to the actor with the fewest requests so far (a group that
        continues the previous call's last group to that group's actor), groups kept in order."""
        assigned: list[list[int]] = [[] for _ in self.actors]
        actor = None
        for index, request in enumerate(requests):
            if request.reuse_prefix is not True or (actor is None and self._last is None):
                actor = min(range(self.n_actors), key=lambda a: (len(assigned[a]), a))
            elif actor is None:
                actor = self._last
            assigned[actor].append(index)
        if actor is not None:
            self._last = actor
        return assigned

    def count_tokens(self, text: str) -> int:
        return self._ray.get(self.actors[0].count_tokens.remote(text))

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []


def _default_actors(ray: Any, backend: str, threads: int) -> int:
    """An embedded model per `threads` CPUs of the cluster; for a server, one client per node."""
    if backend != "embedded":
        return max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)


def map_tasks(engine: str, fn: Callable[[Any, Any], Any], common: Any, items: Sequence[Any], *,
              cpus: int = 1) -> Iterator[tuple[int, Any]]:
    """`fn(common, item)` for every item, yielded as (index, result) as each finishes: one after the other in
    this process (local), or as Ray tasks of `cpus` CPUs each (ray; `common` sent to the cluster once, a task
    whose worker dies retried up to MAX_RESTARTS times). The caller writes the results: one writer."""
    if engine == "local":
        for index, item in enumerate(items):
            yield index, fn(common, item)
        return
    if engine != "ray":
        raise ConfigError(f"Unknown engine {engine!r}", hint=f"Choose one of: {', '.join(ENGINES)}.")
    if not items:
        return
    ray = ray_session()
    remote = ray.remote(num_cpus=cpus, max_retries=MAX_RESTARTS)(fn)
    shared = ray.put(common)
    futures = {remote.remote(shared, item): index for index, item in enumerate(items)}
    pending = list(futures)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield futures[done[0]], ray.get(done[0])
