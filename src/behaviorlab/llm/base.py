"""The one protocol every LLM backend implements, and the request/result records it exchanges.

A backend takes a batch of chat requests and returns one `ChatResult` per request, in order. A request
that keeps failing comes back as a result with a `Failure`, never as an exception through the batch:
callers count failures, they never replace them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from behaviorlab.progress import ProgressReporter

Role = Literal["system", "user", "assistant"]
FailureKind = Literal["timeout", "connection", "rate_limited", "server_error", "auth", "not_found",
                      "bad_request", "invalid_output", "cancelled", "internal"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make. `json_schema`, when given, constrains the output to that schema.

    `reuse_prefix` asks a backend that keeps the previous request's computed prompt (the embedded model) to
    reuse its shared prefix (True) or to compute this prompt whole (False); None leaves its own setting.
    A caller that sends a fixed order of requests (one slot) makes reuse deterministic: the same requests
    in the same order compute the same prefixes. Servers behind HTTP cache prefixes on their own terms."""

    messages: tuple[ChatMessage, ...]
    json_schema: Mapping[str, Any] | None = None
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    reuse_prefix: bool | None = None

    def cache_key(self, backend: str, model: str) -> str:
        """Stable hash of everything that determines the completion."""
        payload = {
            "backend": backend,
            "model": model,
            "messages": [asdict(m) for m in self.messages],
            "schema": self.json_schema,
            "sampling": asdict(self.sampling),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"
    cached: bool = False  # from behaviorlab's completion cache, not the server
    prefix_cached_tokens: int = 0  # prompt tokens the server reused from its KV cache (of prompt_tokens)


@dataclass(frozen=True)
class Failure:
    """Why a request produced no usable completion.

    For "invalid_output" the model did answer: `output` keeps its text (for repair or inspection) and the
    token counts what it cost, so accounting counts tokens spent on failures too.
    """

    kind: FailureKind
    message: str
    attempts: int = 1
    output: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    """Exactly one of `completion` and `failure` is set."""

    request: ChatRequest
    completion: Completion | None = None
    failure: Failure | None = None

    def __post_init__(self) -> None:
        if (self.completion is None) == (self.failure is None):
            raise ValueError("a ChatResult holds either a completion or a failure")

    @property
    def ok(self) -> bool:
        return self.completion is not None


@runtime_checkable
class LLMBackend(Protocol):
    """Take a batch of chat requests, return completions (or failures) with token counts."""

    name: str
    model: str

    def complete(self, requests: Sequence[ChatRequest], progress: ProgressReporter | None = None) -> list[ChatResult]:
        """One result per request, in request order.

        `progress` hears each finished request; a backend that waits on a server may also report, as
        info["waiting"], what it is waiting for (which server, which attempt, how long at most)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` costs with this backend's tokenizer."""
        ...

    def close(self) -> None: ...


BackendFactory = Callable[..., LLMBackend]
_REGISTRY: dict[str, BackendFactory] = {}


def prefix_cached_tokens(usage: Mapping[str, Any]) -> int:
    """Prompt tokens an OpenAI-style `usage` says the server read from its prompt cache (llama.cpp, vLLM and
    OpenAI report `prompt_tokens_details.cached_tokens`; absent means none)."""
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Register a backend factory by name: `factory(config: LLMConfig, notify: Callable[[str], None] | None)`."""

    def decorate(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def backend_factory(name: str) -> BackendFactory:
    from behaviorlab.errors import LLMError

    if name not in _REGISTRY:
        raise LLMError(f"Unknown LLM backend {name!r}", hint=f"Choose one of: {', '.join(backend_names()) or '(none registered)'}.")
    return _REGISTRY[name]
