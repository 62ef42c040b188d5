"""The constrained output schema, and parsing, validation and repair of what comes back.

The schema is built from the prompt's legend: a fixed-length JSON array of codes from an enum, one
per event. Timed logs get the same schema: the grounding's time skeleton already fixes each event's
weekday and hour bin, so the LLM writes only actions and the checked events take the skeleton's times.
The embedded backend decodes under this schema, so its completions always parse; servers that ignore
it are caught by the same checks.

Checks, in order: JSON, shape and types, known codes, length, domain rules. Safe repairs: codes
written with stray spaces or lower case, a full action name instead of its code, extra events past
the requested length (cut). Anything else rejects the attempt. Every problem found is returned,
repaired or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from behaviorlab.compress.encode import CodeBook
from behaviorlab.generate.grounding import TimeSlot, assemble_events
from behaviorlab.generate.rules import DomainRules
from behaviorlab.profiles.episodes import Event


def output_schema(book: CodeBook, length: int) -> dict[str, Any]:
    """A fixed-length array of the legend's codes, one per event (times, where any, come from the skeleton)."""
    code = {"type": "string", "enum": list(book.codes)}
    return {"type": "array", "items": code, "minItems": length, "maxItems": length}


@dataclass(frozen=True)
class Issue:
    message: str
    repaired: bool


@dataclass
class Checked:
    """The outcome of checking one completion."""

    events: list[Event] | None  # None when rejected
    issues: list[Issue] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.events is not None

    @property
    def valid_before_repair(self) -> bool:
        return self.accepted and not self.issues


def _code(value: Any, book: CodeBook, issues: list[Issue]) -> str | None:
    """The action a code stands for; repairs spacing/case and full names; None when unknown."""
    if not isinstance(value, str):
        issues.append(Issue(f"action code {value!r} is a {type(value).__name__}, not a string", False))
        return None
    action = book.action_of(value)
    if action is not None:
        return action
    normalised = value.strip().upper()
    if book.action_of(normalised) is not None:
        issues.append(Issue(f"code {value!r} normalised to {normalised!r}", True))
        return book.action_of(normalised)
    if value.strip() in book.actions:
        issues.append(Issue(f"full action name {value!r} given instead of its code", True))
        return value.strip()
    issues.append(Issue(f"unknown action code {value[:60]!r}", False))
    return None


def check_completion(text: str, book: CodeBook, length: int, time_slots: tuple[TimeSlot, ...] | None,
                     rules: DomainRules, *, truncated: bool = False) -> Checked:
    """Check one completion; accepted events take their times from `time_slots` (None: position-only log)."""
    issues: list[Issue] = []
    if not text.strip():
        return Checked(None, [Issue("empty completion", False)])
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = "truncated completion (max_tokens reached)" if truncated else f"not JSON: {exc.msg} at {exc.pos}"
        return Checked(None, [Issue(reason, False)])
    if not isinstance(value, list):
        return Checked(None, [Issue(f"expected a JSON array, got {type(value).__name__}", False)])
    if len(value) > length:
        issues.append(Issue(f"{len(value)} events, cut to {length}", True))
        value = value[:length]
    if len(value) < length:
        issues.append(Issue(f"{len(value)} events, {length} required", False))
    actions = [_code(item, book, issues) for item in value]
    if any(not i.repaired for i in issues):
        return Checked(None, issues)
    events = assemble_events(time_slots, [a for a in actions if a is not None])
    issues.extend(Issue(message, False) for message in rules.violations([e.action for e in events]))
    if any(not i.repaired for i in issues):
        return Checked(None, issues)
    return Checked(events, issues)
