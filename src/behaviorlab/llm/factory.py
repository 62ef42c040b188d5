"""Build a ready backend from an `LLMConfig`: look the backend up by name, wrap it in the cache if asked."""

from __future__ import annotations

from collections.abc import Callable

from behaviorlab.llm import embedded as _embedded  # noqa: F401  (registers "embedded")
from behaviorlab.llm import http_backend as _http_backend  # noqa: F401  (registers "http")
from behaviorlab.llm.base import LLMBackend, backend_factory
from behaviorlab.llm.cache import CachedBackend, ResponseCache
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.http_backend import DEFAULT_IN_FLIGHT

CACHE_FILE = "completions.sqlite"


def create_backend(config: LLMConfig, notify: Callable[[str], None] | None = None) -> LLMBackend:
    """The configured backend; `notify` hears about slow one-time set-up (assembling model weights)."""
    return with_cache(backend_factory(config.backend)(config, notify), config, config.parallel or DEFAULT_IN_FLIGHT)


def with_cache(backend: LLMBackend, config: LLMConfig, in_flight: int) -> LLMBackend:
    """`backend` behind the completions cache when `config.use_cache` says so; `in_flight`: requests it computes at once."""
    if not config.use_cache:
        return backend
    # Chunks of a few rounds of slots: big enough to keep every slot busy, small enough that an
    # interrupted run loses little finished work.
    cache = ResponseCache(config.resolved_cache_dir() / CACHE_FILE)
    return CachedBackend(backend, cache, chunk_size=4 * in_flight)
