"""The constrained output schema, and parsing, validation and repair of what comes back.

The schema is built from the prompt's legend: a fixed-length JSON array whose items are codes from an
enum (position-only logs) or `[bin, code]` pairs with the bin from the allowed set (timed logs). The
embedded backend decodes under this schema, so its completions always parse; servers that ignore it
are caught by the same checks.

Checks, in order: JSON, shape and types, known codes, length, time order within a day, domain rules.
Safe repairs: codes written with stray spaces or lower case, a full action name instead of its code,
extra events past the requested length (cut), bins out of order within a day (re-sorted). Anything
else rejects the attempt. Every problem found is returned, repaired or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from behaviorlab.compress.encode import CodeBook
from behaviorlab.generate.grounding import assemble_events
from behaviorlab.generate.rules import DomainRules
from behaviorlab.profiles.episodes import Event


def output_schema(book: CodeBook, length: int, bins: tuple[int, ...] | None) -> dict[str, Any]:
    code = {"type": "string", "enum": list(book.codes)}
    item: dict[str, Any] = code if bins is None else {
        "type": "array", "prefixItems": [{"type": "integer", "enum": list(bins)}, code],
        "items": False, "minItems": 2, "maxItems": 2}
    return {"type": "array", "items": item, "minItems": length, "maxItems": length}


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


def check_completion(text: str, book: CodeBook, length: int, days: tuple[int, ...] | None,
                     bins: tuple[int, ...], rules: DomainRules, *, truncated: bool = False) -> Checked:
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
    actions: list[str | None] = []
    hour_bins: list[int] = []
    for item in value:
        if days is None:
            actions.append(_code(item, book, issues))
            continue
        if not (isinstance(item, list) and len(item) == 2):
            issues.append(Issue(f"event {json.dumps(item)[:40]} is not a [bin, code] pair", False))
            actions.append(None)
            continue
        hour_bin, code = item
        if not isinstance(hour_bin, int) or isinstance(hour_bin, bool) or hour_bin not in bins:
            issues.append(Issue(f"bin {hour_bin!r} is not one of {list(bins)}", False))
            actions.append(None)
            continue
        hour_bins.append(hour_bin)
        actions.append(_code(code, book, issues))
    if any(not i.repaired for i in issues):
        return Checked(None, issues)
    events = assemble_events(days, hour_bins if days is not None else None, [a for a in actions if a is not None])
    events = _time_ordered(events, issues)
    issues.extend(Issue(message, False) for message in rules.violations([e.action for e in events]))
    if any(not i.repaired for i in issues):
        return Checked(None, issues)
    return Checked(events, issues)


def _time_ordered(events: list[Event], issues: list[Issue]) -> list[Event]:
    """Within each day (the skeleton fixes the day order), bins must not go back; re-sort them if they do."""
    out: list[Event] = []
    start = 0
    while start < len(events):
        end = start
        while end < len(events) and events[end].weekday == events[start].weekday:
            end += 1
        day = events[start:end]
        ordered = sorted(day, key=lambda e: -1 if e.hour_bin is None else e.hour_bin)
        if ordered != day:
            issues.append(Issue(f"bins out of order on weekday {day[0].weekday}: re-sorted", True))
        out.extend(ordered)
        start = end
    return out
