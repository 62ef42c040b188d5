"""Request and response bodies (what /docs shows). Unknown keys are refused; limits that depend on the
server's settings (history length, k) are checked by the routes, which name the limit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from behaviorlab.schema import Profile


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(Body):
    model: str | None = Field(None, description="a served next-behavior model; may be left out when only one is served")
    history: list[str] = Field(description="past actions, oldest first", examples=[["Light:on", "TV:on"]])
    k: int = Field(10, ge=1, description="how many next actions to return")
    context: dict[str, str] | None = Field(None, description="the next event's context, e.g. {\"hour_bin\": \"(18~21)\"}; "
                                                            "GET /models lists what each model reads")


class Prediction(Body):
    action: str
    probability: float
    description: str


class PredictResponse(Body):
    model: str
    predictions: list[Prediction]


class ScoreRequest(Body):
    model: str | None = Field(None, description="a served anomaly detector; may be left out when only one is served")
    events: list[str] = Field(min_length=1, description="the sequence's actions, oldest first")
    context: list[str] | None = Field(None, description="one context value per event (the detector's context "
                                                        "column, e.g. the hour bin), when the detector reads one")


class ScoreResponse(Body):
    model: str
    event_scores: list[float] = Field(description="surprisal of each event (higher: more unusual)")
    sequence_score: float = Field(description="the events' scores aggregated as the detector was trained to")
    aggregate: str
    threshold: float
    anomalous: bool = Field(description="sequence_score > threshold")


class GenerateRequest(Body):
    profile_index: int = Field(0, ge=0, description="the sampled population profile whose grounding (real neighbours) "
                                                    "and seeds are used")
    profile: Profile | None = Field(None, description="a profile to use instead of the population's; without "
                                                      "neighbours it takes those of profile_index")
    persona: str | None = Field(None, max_length=2000, description="a free-text persona added to the prompt (as data)")


class GeneratedEvent(Body):
    action: str
    weekday: str | None
    hour_bin: str | None
    description: str


class GenerateResponse(Body):
    profile_id: str
    profile_index: int
    attempts: int
    events: list[GeneratedEvent]


class ModelInfo(Body):
    name: str
    kind: str
    serves: str = Field(description="the route that uses it: /predict or /score")
    vocabulary_size: int
    trained_on: str | None = Field(description="digest of the training log (EventLog.digest), when recorded")
    context: dict[str, list[str]] | None = Field(description="context columns read, with their known values; "
                                                             "null: any text")
    path: str


class ModelsResponse(Body):
    models: list[ModelInfo]
    loaded_at: float = Field(description="Unix time the served set was loaded (changes on a SIGHUP reload)")
    generate: bool = Field(description="whether /generate is configured")
    generate_loaded_at: float | None = Field(description="Unix time the /generate backend was built (changes on a "
                                                         "SIGHUP reload); null without /generate")


class ErrorDetail(Body):
    code: str
    message: str
    hint: str | None = None
    details: list[Any] = Field(default_factory=list)


class ErrorResponse(Body):
    error: ErrorDetail
