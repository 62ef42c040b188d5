"""The typed settings of `behaviorlab serve` (flags, or a TOML file with the same keys)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ConfigError
from behaviorlab.generate.config import GenerateConfig

TOKEN_ENV = "BEHAVIORLAB_SERVE_TOKEN"  # the bearer token, read from the environment only (never a flag: ps shows flags)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelSpec(StrictConfig):
    """One served model: the name requests use and the saved directory it is loaded from."""

    name: str
    path: Path

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(f"model name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        return name


def parse_model_spec(text: str) -> ModelSpec:
    """'NAME=DIR' -> ModelSpec (the --model flag)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ConfigError(f"--model {text!r} is not NAME=DIR", hint="Write e.g. --model sasrec=models/sasrec.")
    return ModelSpec(name=name, path=Path(path))


class BatchingConfig(StrictConfig):
    """Micro-batching of concurrent /predict (or /score) requests to one model into one forward pass."""

    enabled: bool = True
    max_wait_ms: float = Field(2.0, ge=0.0, le=100.0)  # how long the first request of a batch waits for company
    max_batch: int = Field(64, ge=1, le=4096)


class LimitsConfig(StrictConfig):
    """What one request may ask for; larger requests get a 4xx that names the limit."""

    max_history: int = Field(512, ge=1)  # events in a /predict history or a /score sequence
    max_k: int = Field(100, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=256)


class GenerationServiceConfig(StrictConfig):
    """/generate: the generation settings (with [llm]) and the queue; the grounding log is given apart."""

    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    queue_size: int = Field(8, ge=1, le=1024)  # waiting requests beyond the one being generated get 429


class ServeConfig(StrictConfig):
    models: list[ModelSpec] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    generation: GenerationServiceConfig | None = None
    access_log: Path | None = None  # JSON lines; None: standard error
    # Intra-op threads of the forward passes. 1: the event loop keeps a core, and micro-batching, not threads,
    # makes the work per request small (on the shared 2-core machine a SASRec pass over one FR history took
    # 67 ms of CPU with 2 threads, which spin-wait for each other, and 4 ms with 1).
    torch_threads: int = Field(1, ge=1)

    @field_validator("models")
    @classmethod
    def _distinct(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        names = [m.name for m in models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"model names must be distinct; given more than once: {twice}")
        return models
