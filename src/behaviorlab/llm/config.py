"""The typed `[llm]` configuration shared by every backend; unknown keys are rejected."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_serializer

from behaviorlab.config import StrictConfig
from behaviorlab.llm.redact import public_url
from behaviorlab.llm.weights import DEFAULT_MODEL, cache_root

API_KEY_ENVS = ("BEHAVIORLAB_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV = "BEHAVIORLAB_BASE_URL"


class LLMConfig(StrictConfig):
    """How to reach a model. Keys that a backend does not use are ignored by that backend."""

    backend: str = "embedded"
    # A named model (see `behaviorlab llm models`) or a .gguf path for "embedded"; the server's model id for "http".
    model: str = DEFAULT_MODEL
    # Requests decoded at once: slots of the embedded model, requests in flight for the HTTP backend.
    # None takes the backend's own default: one slot for embedded (the setting whose output a seed
    # fixes: see llm/embedded.py), a few requests in flight for a server, which batches them itself.
    parallel: int | None = Field(default=None, ge=1, le=256)
    # Embedded: CPU threads (None = the physical cores this process may use: llama.cpp threads
    # spin-wait, so more threads than free cores slows decoding down sharply) and context tokens per slot.
    threads: int | None = Field(default=None, ge=1)
    context_per_slot: int = Field(default=2048, ge=256)
    # Embedded: reuse the cached prefix a prompt shares with the previous one. Generation prompts share
    # a long one, so this is about 1.4x faster, but a completion then depends on the request before it
    # (computed in other chunks, its last bits differ), so a seed no longer fixes the output.
    prompt_cache: bool = False
    allow_download: bool = True  # embedded: may fetch weights from the Hugging Face hub when online
    # HTTP: base URL ending in /v1 (else $BEHAVIORLAB_BASE_URL) and key (else $BEHAVIORLAB_API_KEY, $OPENAI_API_KEY).
    base_url: str | None = None
    api_key: SecretStr | None = None
    # "auto": send response_format, and fall back to the schema in the prompt if the server refuses it.
    structured_output: Literal["auto", "response_format", "prompt"] = "auto"
    # HTTP waits: a whole answer, and connecting (also the limit of the first-contact check, GET /models).
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    # Completions cache (SQLite) under cache_dir (default: the user cache dir, or $BEHAVIORLAB_CACHE_DIR).
    use_cache: bool = True
    cache_dir: Path | None = None
    price_per_prompt_token: float | None = Field(default=None, ge=0)
    price_per_completion_token: float | None = Field(default=None, ge=0)

    @field_serializer("base_url")
    def _shown_base_url(self, url: str | None) -> str | None:
        """Dumps (a run's manifest and fingerprint) never hold URL credentials."""
        return public_url(url) if url is not None else None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The repr masks URL credentials too: pydantic shows field values as they are, not as dumped."""
        for name, value in super().__repr_args__():
            yield name, public_url(value) if name == "base_url" and value is not None else value

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else cache_root()

    def resolved_threads(self) -> int:
        return self.threads if self.threads is not None else physical_cores()

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get(BASE_URL_ENV) or None

    def resolved_api_key(self) -> SecretStr | None:
        if self.api_key is not None:
            return self.api_key
        for name in API_KEY_ENVS:
            if os.environ.get(name):
                return SecretStr(os.environ[name])
        return None


def physical_cores(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """Physical cores among the CPUs this process may run on (Linux's cpuinfo), else half the logical ones.

    Half is right with two hardware threads per core and wrong without them: on a 2-core machine without
    SMT it gave llama.cpp 1 thread, and 2 threads generated 1.75x faster.
    """
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 2))
    try:
        blocks = cpuinfo.read_text(encoding="utf-8", errors="replace").split("\n\n")
    except OSError:
        blocks = []
    cores = set()
    for block in blocks:
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed and "core id" in fields:
            cores.add((fields.get("physical id"), fields["core id"]))
    return len(cores) if cores else max(1, len(allowed) // 2)
