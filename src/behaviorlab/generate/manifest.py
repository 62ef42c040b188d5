"""The generation run's manifest (`manifest.json`): one typed record, written by `run.py`, read by the CLI,
evaluation and the report.

Keys added after runs were made have the value those runs had (`sequences_per_profile` 1, no grounding
digest, ...) or None where the figure was not counted, so an older run still reads. A key this version does
not know (a run written by a newer behaviorlab) is refused rather than dropped without a word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from behaviorlab.atomic import write_text_atomic
from behaviorlab.config import StrictConfig
from behaviorlab.errors import DataError, Problem

MANIFEST_FILE = "manifest.json"


class RunData(StrictConfig):
    """The real log the run was grounded on."""

    log_schema: dict[str, Any] = Field(alias="schema")  # schema.Schema as JSON
    real_users: int
    real_events: int
    # EventLog.digest() of the grounding log: `experiment` pairs the run only with cells of that subset
    grounding_digest: str | None = None  # runs made before it was recorded


class ScenarioFacts(StrictConfig):
    names: list[str]
    text: str
    bins: list[int]  # the allowed 3-hour bins
    days: list[int]  # the allowed weekdays, Monday 0


class AttemptCounts(StrictConfig):
    attempts: int
    accepted: int
    rejected: int
    failed: int


class TokenFigures(StrictConfig):
    prompt: int
    completion: int
    prompt_tokens_per_generated_event_compressed: float
    prompt_tokens_per_generated_event_plain_json: float
    compressed_over_plain: float
    counted_with: str
    # share of the prompt tokens the server reused from the previous prompt instead of computing them
    prefix_cache_hit_rate: float | None = None  # None: a run made before these three were counted
    prompt_per_accepted_sequence: float | None = None
    completion_per_accepted_sequence: float | None = None


class TimeFigures(StrictConfig):
    llm_wall_s: float
    this_invocation_wall_s: float
    completion_tokens_per_s: float
    accepted_sequences_per_minute: float | None = None  # None: a run made before it was counted


class CopyFigures(StrictConfig):
    policy: str  # generate.config's `copies`: flag or reject
    count: int
    sequences: list[int]  # the sequence numbers that copy a real window verbatim


class OutlierFigures(StrictConfig):
    method: str
    threshold: float
    dropped: int
    scored: int


class SyntheticFigures(StrictConfig):
    sequences: int
    events: int
    file: str  # the synthetic EventLog's Parquet file, inside the run directory


class PrivacyFacts(StrictConfig):
    dp_epsilon: float | None
    covers: str
    not_covered: str


class ExemplarFacts(StrictConfig):
    count: int
    records: list[str]  # the real records shown verbatim in prompts


class RunManifest(StrictConfig):
    config: dict[str, Any]  # GenerateConfig as JSON (URL credentials masked); older runs lack later keys
    backend: str
    model: str
    seed: int
    data: RunData
    sequence_length: int
    scenario: ScenarioFacts
    population: dict[str, Any]  # profiles.diversity.diversity_report and the diversity knob
    attempts: AttemptCounts
    profiles: int | None = None  # None: a run made before sequences_per_profile, one sequence per profile
    sequences_per_profile: int = 1
    validity_rate_before_repair: float
    validity_rate_before_repair_of_completions: float
    validity_rate_after_repair: float
    complete: bool
    pending_sequences: int = 0
    sequences_missing: int = 0  # every attempt at them failed
    issues: dict[str, int]  # why attempts were rejected, counted by the message's first words
    domain_rules: dict[str, Any]
    tokens: TokenFigures
    time: TimeFigures
    copies: CopyFigures
    outliers: OutlierFigures | None
    synthetic: SyntheticFigures
    privacy: PrivacyFacts
    exemplars_in_prompts: ExemplarFacts
    finished_at: str  # ISO 8601, UTC

    @property
    def grounded(self) -> bool:
        """False for a run generated without grounding (`generate --grounding none`, the ablation)."""
        return self.config.get("grounding", "real") != "none"

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON object `manifest.json` holds."""
        return self.model_dump(mode="json", by_alias=True)

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_FILE
        write_text_atomic(path, json.dumps(self.to_json(), indent=2, ensure_ascii=False))
        return path

    @classmethod
    def read(cls, directory: Path) -> RunManifest:
        """The manifest of the run in `directory`; a DataError names what is wrong with a damaged one."""
        path = directory / MANIFEST_FILE
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON", [Problem(str(exc))],
                            hint="The run's manifest is damaged; re-run the generation to rewrite it.") from exc
        except ValidationError as exc:
            problems = [Problem(f"{'.'.join(str(p) for p in error['loc']) or 'manifest'}: {error['msg']}")
                        for error in exc.errors()]
            raise DataError(f"{path} is not a generation run manifest this behaviorlab can read", problems,
                            hint="Re-run the generation with this version to rewrite it (finished work is reused), "
                                 "or pass the synthetic .parquet file itself.") from exc
