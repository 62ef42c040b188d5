"""Per-run LLM accounting: requests, failures by kind, tokens spent and served from cache, speed, cost.

A generation run keeps one `RunAccounting`, records each batch's results with the batch's wall time,
and writes `to_dict()` into its manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from behaviorlab.llm.base import ChatResult


@dataclass
class RunAccounting:
    """Totals over every batch recorded. Cached completions cost nothing and are counted apart."""

    price_per_prompt_token: float | None = None
    price_per_completion_token: float | None = None
    requests: int = 0
    completed: int = 0
    cached: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0  # spent in this run, failed answers included
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # what the cached completions cost when they were first made
    cached_completion_tokens: int = 0
    wall_s: float = 0.0

    def record(self, results: Sequence[ChatResult], wall_s: float) -> None:
        """Add one batch: its results and how long the whole batch took."""
        self.requests += len(results)
        self.wall_s += wall_s
        for result in results:
            if result.failure is not None:
                # A failed request can still have cost tokens (an answer that broke the schema).
                self.failures[result.failure.kind] += 1
                self.prompt_tokens += result.failure.prompt_tokens
                self.completion_tokens += result.failure.completion_tokens
                continue
            completion = result.completion
            assert completion is not None  # a ChatResult holds exactly one of the two
            self.completed += 1
            if completion.cached:
                self.cached += 1
                self.cached_prompt_tokens += completion.prompt_tokens
                self.cached_completion_tokens += completion.completion_tokens
            else:
                self.prompt_tokens += completion.prompt_tokens
                self.completion_tokens += completion.completion_tokens

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def completion_tokens_per_s(self) -> float:
        """Output tokens written per second of batch wall time (cache hits write none)."""
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def estimated_cost(self) -> float | None:
        """Cost of the tokens spent in this run, when a price per token is configured."""
        if self.price_per_prompt_token is None and self.price_per_completion_token is None:
            return None
        return (self.prompt_tokens * (self.price_per_prompt_token or 0.0)
                + self.completion_tokens * (self.price_per_completion_token or 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready figures for a run manifest."""
        return {
            "requests": self.requests,
            "completed": self.completed,
            "cached": self.cached,
            "failed": self.failed,
            "failures_by_kind": dict(sorted(self.failures.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "wall_s": round(self.wall_s, 3),
            "completion_tokens_per_s": round(self.completion_tokens_per_s, 2),
            "estimated_cost": self.estimated_cost,
        }
