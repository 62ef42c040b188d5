"""Zero-shot LLM next-action predictor: the baseline that needs no training.

The recent history is written as text (one action description per line, oldest first, with the
target's weekday/hour bin when the examples carry them) and the LLM is asked for the k most likely
next actions, most likely first. A JSON schema constrains every answer to a list of k values from
the vocabulary (an enum), so the model can only name actions that exist; what it still gets wrong
(unparsable JSON, names outside the vocabulary, backend failures) is counted per kind in
`failures_` and that example's scores stay flat (every action tied, which the ranking metrics count
as a miss). A failed prediction is never filled in from anywhere else.

Scores follow the rank: the action ranked r-th (0-based) gets probability proportional to
1 / (r + 1) within `listed_mass`, the actions not listed share the rest equally.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import Field, field_validator

from behaviorlab.config import StrictConfig
from behaviorlab.llm.base import ChatMessage, ChatRequest, LLMBackend, SamplingSettings
from behaviorlab.llm.config import LLMConfig
from behaviorlab.models.base import SequenceModel

if TYPE_CHECKING:
    from behaviorlab.progress import ProgressReporter
    from behaviorlab.schema import EventLog
    from behaviorlab.sequences import NextEventExamples

ANSWER_KEY = "next"


class ZeroShotConfig(StrictConfig):
    llm: LLMConfig = Field(default_factory=LLMConfig)  # which backend and model answer (see `behaviorlab llm models`)
    top_k: int = Field(5, ge=1, le=50)   # how many ranked actions one answer lists
    history_length: int = Field(10, ge=1)  # the most recent actions shown to the LLM
    list_vocabulary_max: int = Field(60, ge=0)  # name the allowed actions in the prompt up to this many
    listed_mass: float = Field(0.99, gt=0.0, lt=1.0)
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(256, ge=8)
    seed: int = 0

    @field_validator("llm")
    @classmethod
    def _no_saved_key(cls, llm: LLMConfig) -> LLMConfig:
        if llm.api_key is not None:
            raise ValueError("the config is saved with the model, so it must not hold an API key: "
                             "set BEHAVIORLAB_API_KEY (or OPENAI_API_KEY) instead")
        return llm


class ZeroShotLLMModel(SequenceModel):
    name: ClassVar[str] = "zero-shot-llm"
    config_class: ClassVar[type[StrictConfig]] = ZeroShotConfig
    config: ZeroShotConfig

    def __init__(self, config: ZeroShotConfig | None = None, backend: LLMBackend | None = None) -> None:
        super().__init__(config)
        self.backend = backend            # built from the config on first use when not given
        self.domain_: str = "behavior"    # the log's action meaning, for the prompt
        self.requests_: int = 0
        self.failures_: Counter[str] = Counter()  # failure kind -> count, over every prediction made

    def fit(self, train: EventLog, valid: NextEventExamples | None = None, *, warm_start: bool = False,
            progress: ProgressReporter | None = None) -> Self:
        """No training: only the vocabulary (the allowed answers) and the domain's words are kept."""
        self._adopt_vocabulary(train, warm_start)
        self.domain_ = train.schema.action_meaning
        return self

    # -- prompting ------------------------------------------------------------------------------
    def context_values(self) -> None:
        return None  # any context goes into the prompt as text ("weekday Mon, hour bin (6~9)")

    def _labels(self) -> list[str]:
        """What the LLM writes for each action: its description when those are unique, else its token."""
        vocabulary = self.vocabulary
        descriptions = [vocabulary.describe(a) for a in vocabulary.actions]
        return descriptions if len(set(descriptions)) == len(descriptions) else list(vocabulary.actions)

    def answer_schema(self) -> dict[str, Any]:
        """JSON schema of an answer: exactly top_k values from the vocabulary's labels."""
        k = min(self.config.top_k, len(self.vocabulary))
        return {
            "type": "object",
            "properties": {ANSWER_KEY: {"type": "array", "items": {"type": "string", "enum": self._labels()},
                                        "minItems": k, "maxItems": k}},
            "required": [ANSWER_KEY],
            "additionalProperties": False,
        }

    def request_for(self, history: Sequence[str], context: Mapping[str, Any]) -> ChatRequest:
        vocabulary = self.vocabulary
        k = min(self.config.top_k, len(vocabulary))
        recent = list(history)[-self.config.history_length:]
        lines = [f"{i}. {vocabulary.describe(a)}" for i, a in enumerate(recent, start=1)] or ["(no earlier actions)"]
        when = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in context.items() if value is not None)
        parts = ["Recent actions, oldest first:\n" + "\n".join(lines)]
        if when:
            parts.append(f"The next action happens at: {when}.")
        if len(vocabulary) <= self.config.list_vocabulary_max:
            parts.append("Allowed actions: " + "; ".join(self._labels()) + ".")
        parts.append(f'Answer as JSON {{"{ANSWER_KEY}": [...]}} with the {k} most likely next actions, '
                     "most likely first, all different.")
        system = (f"You predict what a user does next from their recent {self.domain_} log. "
                  "Use only the allowed action names, written exactly.")
        sampling = SamplingSettings(temperature=self.config.temperature, max_tokens=self.config.max_tokens,
                                    seed=self.config.seed)
        return ChatRequest((ChatMessage("system", system), ChatMessage("user", "\n\n".join(parts))),
                           json_schema=self.answer_schema(), sampling=sampling)

    def parse_answer(self, text: str) -> list[str] | str:
        """The ranked actions of an answer, or the reason it is invalid (a string)."""
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            return "invalid_output"
        values = payload.get(ANSWER_KEY) if isinstance(payload, dict) else None
        if not isinstance(values, list) or not values:
            return "invalid_output"
        by_label = dict(zip(self._labels(), self.vocabulary.actions, strict=True))
        if any(not isinstance(v, str) or v not in by_label for v in values):
            return "unknown_action"
        return list(dict.fromkeys(by_label[v] for v in values))  # a repeated answer counts once, at its best rank

    # -- prediction -----------------------------------------------------------------------------
    def _backend(self) -> LLMBackend:
        if self.backend is None:
            from behaviorlab.llm import create_backend

            self.backend = create_backend(self.config.llm)
        return self.backend

    def _log_probs(self, histories: Sequence[Sequence[str]], context: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """float32 [N, V]: log-probabilities from each answer's ranking; flat rows for failed answers."""
        requests = [self.request_for(h, {key: values[i] for key, values in context.items()})
                    for i, h in enumerate(histories)]
        results = self._backend().complete(requests)
        vocabulary = self.vocabulary
        out = np.full((len(histories), len(vocabulary)), -np.log(len(vocabulary)), dtype=np.float64)  # [N, V]
        self.requests_ += len(requests)
        for row, result in enumerate(results):
            ranked = self.parse_answer(result.completion.text) if result.ok else result.failure.kind
            if isinstance(ranked, str):
                self.failures_[ranked] += 1
                continue
            out[row] = self.rank_log_probs(ranked)
        return out.astype(np.float32)

    def rank_log_probs(self, ranked: Sequence[str]) -> np.ndarray:
        """float64 [V]: log p with p(r-th listed) proportional to 1/(r+1) inside listed_mass."""
        vocabulary = self.vocabulary
        weights = 1.0 / np.arange(1, len(ranked) + 1)
        probabilities = np.full(len(vocabulary), 0.0)
        unlisted = len(vocabulary) - len(ranked)
        listed_mass = self.config.listed_mass if unlisted else 1.0
        if unlisted:
            probabilities[:] = (1.0 - listed_mass) / unlisted
        columns = vocabulary.columns_of(ranked)
        probabilities[columns] = listed_mass * weights / weights.sum()
        return np.log(probabilities)

    def failure_report(self) -> dict[str, int]:
        """Requests made and failures by kind, over every prediction since the model was created."""
        return {"requests": self.requests_, "failures": sum(self.failures_.values()), **dict(self.failures_)}

    # -- persistence: nothing is learned beyond the vocabulary and the domain's words ------------
    def _state_files(self) -> dict[str, bytes]:
        return {"zero_shot.json": json.dumps({"domain": self.domain_}).encode()}

    def _restore_state(self, directory: Path) -> None:
        self.domain_ = json.loads((directory / "zero_shot.json").read_text(encoding="utf-8"))["domain"]
