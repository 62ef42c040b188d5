"""The typed `[llm]` configuration shared by every backend; unknown keys are rejected."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from behaviorlab.config import StrictConfig
from behaviorlab.llm.weights import DEFAULT_MODEL, cache_root

API_KEY_ENVS = ("BEHAVIORLAB_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV = "BEHAVIORLAB_BASE_URL"


class LLMConfig(StrictConfig):
    """How to reach a model. Keys that a backend does not use are ignored by that backend."""

    backend: str = "embedded"
    # A named model (see `behaviorlab llm models`) or a .gguf path for "embedded"; the server's model id for "http".
    model: str = DEFAULT_MODEL
    # Parallel slots of the embedded model / requests in flight for the HTTP backend.
    parallel: int = Field(default=4, ge=1, le=256)
    # Embedded: CPU threads (None = half the logical cores, i.e. about the physical ones: llama.cpp threads
    # spin-wait, so more threads than free cores slows decoding down sharply) and context tokens per slot.
    threads: int | None = Field(default=None, ge=1)
    context_per_slot: int = Field(default=2048, ge=256)
    allow_download: bool = True  # embedded: may fetch weights from the Hugging Face hub when online
    # HTTP: base URL ending in /v1 (else $BEHAVIORLAB_BASE_URL) and key (else $BEHAVIORLAB_API_KEY, $OPENAI_API_KEY).
    base_url: str | None = None
    api_key: SecretStr | None = None
    # "auto": send response_format, and fall back to the schema in the prompt if the server refuses it.
    structured_output: Literal["auto", "response_format", "prompt"] = "auto"
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    # Completions cache (SQLite) under cache_dir (default: the user cache dir, or $BEHAVIORLAB_CACHE_DIR).
    use_cache: bool = True
    cache_dir: Path | None = None
    price_per_prompt_token: float | None = Field(default=None, ge=0)
    price_per_completion_token: float | None = Field(default=None, ge=0)

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else cache_root()

    def resolved_threads(self) -> int:
        return self.threads if self.threads is not None else max(1, (os.cpu_count() or 2) // 2)

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get(BASE_URL_ENV) or None

    def resolved_api_key(self) -> SecretStr | None:
        if self.api_key is not None:
            return self.api_key
        for name in API_KEY_ENVS:
            if os.environ.get(name):
                return SecretStr(os.environ[name])
        return None
