"""Token accounting with the backend's own tokenizer: what a prompt costs per generated event."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from behaviorlab.llm.base import ChatMessage, LLMBackend


def message_tokens(backend: LLMBackend, messages: Sequence[ChatMessage]) -> int:
    """Tokens of the messages' text (the chat template adds the same few tokens to every prompt style)."""
    return sum(backend.count_tokens(m.content) for m in messages)


@dataclass(frozen=True)
class PromptCost:
    """Prompt tokens of the compressed prompt and of the plain-JSON prompt of the same content."""

    compressed_tokens: int
    plain_tokens: int
    events: int  # events the prompt asks the LLM to generate

    @property
    def compressed_per_event(self) -> float:
        return self.compressed_tokens / max(self.events, 1)

    @property
    def plain_per_event(self) -> float:
        return self.plain_tokens / max(self.events, 1)

    @property
    def ratio(self) -> float:
        """Compressed over plain: below 0.5 means SPPC halves the prompt."""
        return self.compressed_tokens / max(self.plain_tokens, 1)
