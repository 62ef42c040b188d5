"""LLM backends behind one protocol (`LLMBackend`): an embedded llama.cpp model and OpenAI-compatible HTTP.

Usage (a batch in, one result per request out; failures are results, never exceptions)::

    import time

    from behaviorlab.llm import ChatMessage, ChatRequest, LLMConfig, RunAccounting, SamplingSettings, create_backend

    backend = create_backend(LLMConfig(model="qwen2.5-coder-1.5b", parallel=4))  # or backend="http", base_url=...
    schema = {"type": "object", "properties": {"action": {"enum": ["light_on", "tv_off"]}}, "required": ["action"]}
    requests = [ChatRequest((ChatMessage("user", f"Next action for user {i}?"),), json_schema=schema,
                            sampling=SamplingSettings(temperature=0.8, max_tokens=32, seed=i)) for i in range(8)]
    accounting = RunAccounting()
    started = time.perf_counter()
    results = backend.complete(requests, progress=None)
    accounting.record(results, time.perf_counter() - started)
    texts = [r.completion.text for r in results if r.ok]   # schema-valid JSON; failures: r.failure.kind
    backend.close()

Modules: `weights` (named models and where their files come from), `embedded`, `http_backend`,
`structured` (schema constraint and validation), `retry`, `cache` (SQLite + `CachedBackend`),
`accounting` (`RunAccounting`), `config` (`LLMConfig`), `factory` (`create_backend`).
"""

from behaviorlab.llm.accounting import RunAccounting
from behaviorlab.llm.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    Completion,
    Failure,
    LLMBackend,
    SamplingSettings,
)
from behaviorlab.llm.config import LLMConfig
from behaviorlab.llm.factory import create_backend

__all__ = ["ChatMessage", "ChatRequest", "ChatResult", "Completion", "Failure", "LLMBackend", "LLMConfig",
           "RunAccounting", "SamplingSettings", "create_backend"]
