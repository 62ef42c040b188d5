"""Prompts from the template files: role and rules (system), task, scene, scenario and a <data> block.

Two renderings of the same content: `compact` (SPPC codes, legend, time bins, run-lengths; what is
sent) and `plain` (full names as JSON; rendered only to count what prompting without SPPC would cost).
All text that comes from real data passes through `compress.encode.defuse`/`data_text` and sits inside
the <data> block.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import jinja2

from behaviorlab.compress.encode import CodeBook, data_text, defuse, encode_compact, encode_plain
from behaviorlab.generate.grounding import Grounding
from behaviorlab.generate.scenario import Scenario
from behaviorlab.llm.base import ChatMessage
from behaviorlab.schema import HOUR_BINS, WEEKDAYS, Profile, Schema, Vocabulary

SUBJECTS = {"smart_home": "home", "activity": "person", "mobility": "person", "app_usage": "phone user",
            "items": "user", "generic": "user"}


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("behaviorlab.generate", "templates"),
                              undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _profile_line(profile: Profile, scenario: Scenario, name: Callable[[str], str]) -> str:
    routine = profile.routine
    parts = [f"{profile.occupation or 'occupation unknown'}", f"wakes {routine.wake:.0f}h", f"sleeps {routine.sleep % 24:.0f}h"]
    if routine.work_start is not None and routine.work_end is not None:
        parts.append(f"works {routine.work_start:.0f}-{routine.work_end % 24:.0f}h")
    occupants = profile.household_size + scenario.extra_occupants
    if occupants > 1:
        parts.append(f"{occupants} occupants")
    if profile.traits:
        parts.append(defuse(", ".join(profile.traits)))
    if profile.preferred_actions:
        parts.append("often " + " ".join(name(a) for a in profile.preferred_actions))
    return "; ".join(parts)


def _days_text(days: tuple[int, ...]) -> str:
    runs: list[list] = []
    for day in days:
        if runs and runs[-1][0] == day:
            runs[-1][1] += 1
        else:
            runs.append([day, 1])
    return " ".join(f"{WEEKDAYS[d]}*{n}" if n > 1 else WEEKDAYS[d] for d, n in runs)


def build_messages(profile: Profile, grounding: Grounding, scenario: Scenario, schema: Schema, vocabulary: Vocabulary,
                   *, length: int, compact: bool, persona_text: str = "") -> tuple[ChatMessage, ChatMessage]:
    """System and user message for one profile, compact (sent) or plain (counted only)."""
    book = CodeBook(grounding.legend_actions)
    has_time = grounding.days is not None
    if compact:
        name = book.code_of
        legend = "\n".join(book.legend(vocabulary))
        exemplars = "\n".join(encode_compact(e.events, book) for e in grounding.exemplars)
        habits = " ".join(f"{name(a)}>{name(b)}" for a, b, _ in grounding.habits)
        event_shape = "[bin,code]" if has_time else "a code"
    else:
        name = data_text
        legend = ""
        exemplars = "\n".join(encode_plain(e.events) for e in grounding.exemplars)
        habits = "; ".join(f"{data_text(a)} then {data_text(b)}" for a, b, _ in grounding.habits)
        event_shape = '{"hour_bin":"(b~b+3)","action":"<name>"}' if has_time else '{"action":"<name>"}'
    profile_line = _profile_line(profile, scenario, name)
    if persona_text:
        profile_line += f". {defuse(persona_text)}"
    values = {
        "subject": SUBJECTS[schema.domain], "action_meaning": schema.action_meaning, "length": length,
        "has_time": has_time, "compact": compact, "scenario": scenario.text, "profile": profile_line,
        "legend": legend, "habits": habits, "exemplars": exemplars, "event_shape": event_shape,
        "days": _days_text(grounding.days) if has_time else "",
        # the bins are only worth stating when a scenario limits them
        "bins": ",".join(map(str, grounding.bins)) if len(grounding.bins) < len(HOUR_BINS) else "",
    }
    env = _templates()
    return (ChatMessage("system", env.get_template("system.txt").render(values)),
            ChatMessage("user", env.get_template("user.txt").render(values)))
