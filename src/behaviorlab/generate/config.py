"""The typed configuration of a generation run (TOML `[generate]` plus `[llm]`, or CLI flags)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from behaviorlab.config import StrictConfig
from behaviorlab.errors import ConfigError
from behaviorlab.generate.scenario import parse_scenario
from behaviorlab.llm.config import LLMConfig


class GenerateConfig(StrictConfig):
    n_users: int = Field(100, ge=1, description="synthetic sequences to generate")
    # sequences per sampled profile: each after the first reuses the computed prompt prefix (generate.run)
    sequences_per_profile: int = Field(1, ge=1, le=16)
    seed: int = 0
    diversity: float = Field(0.5, ge=0.0, le=1.0)
    length: int | None = Field(None, ge=2, le=200, description="events per sequence; default: the real median, at most 10")
    scenario: list[str] = Field(default_factory=list, description="environment changes, e.g. ['night'] (see generate.scenario)")
    n_strata: int = Field(8, ge=1, le=64)
    n_neighbours: int = Field(20, ge=1, le=100)
    # "none": the ablation that shows what grounding is worth: profile and scenario only (generate.grounding)
    grounding: Literal["real", "none"] = "real"
    # what weighs the time skeleton's slots: the real counts, or also the profile's waking hours (generate.grounding)
    time_weights: Literal["counts", "counts_and_routine"] = "counts"
    n_exemplars: int = Field(6, ge=0, le=32)
    n_habits: int = Field(5, ge=0, le=30)
    max_similarity: float = Field(0.9, gt=0.0, le=1.0, description="SPPC: exemplars more similar than this are redundant")
    max_attempts: int = Field(3, ge=1, le=20)
    batch_size: int = Field(8, ge=1, le=256)
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    persona: Literal["statistics", "llm"] = "statistics"
    dp_epsilon: float | None = Field(None, gt=0.0, description="Laplace noise on count tables entering prompts")
    outlier_filter: bool = True
    copies: Literal["flag", "reject"] = "flag"
    llm: LLMConfig = Field(default_factory=LLMConfig)

    @field_validator("scenario")
    @classmethod
    def _known_scenarios(cls, names: list[str]) -> list[str]:
        """Fail while reading the configuration, before any data or model is loaded."""
        try:
            parse_scenario(names)
        except ConfigError as exc:
            raise ValueError(f"{exc.message} ({exc.hint})") from None
        return names
