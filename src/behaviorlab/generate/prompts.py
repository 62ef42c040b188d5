"""Prompts from the template files: role and rules (system), task, scene, scenario, a <data> block and
the answer's time slots.

Two renderings of the same content: `compact` (SPPC codes, legend, time bins, run-lengths; what is
sent) and `plain` (full names as JSON; rendered only to count what prompting without SPPC would cost).
All text that comes from real data or from the user's scenario arguments passes through
`compress.encode.defuse`/`data_text` and sits inside the <data> block. The time slots come from the grounding's skeleton, so the prompt states when each
event happens and asks only for the actions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from itertools import groupby

import jinja2

from behaviorlab.compress.encode import CodeBook, data_text, defuse, encode_compact, encode_plain
from behaviorlab.generate.grounding import Grounding, TimeSlot
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


def _times_compact(time_slots: tuple[TimeSlot, ...]) -> str:
    """`Wed 6*2 7, Thu 2`: each weekday once (the slots are in time order), then its bins, a repeated bin
    written once with a count, as in the exemplars."""
    days = []
    for weekday, slots in groupby(time_slots, key=lambda s: s.weekday):
        runs = [(b, len(list(run))) for b, run in groupby(s.hour_bin for s in slots)]
        days.append(f"{WEEKDAYS[weekday]} " + " ".join(f"{b}*{n}" if n > 1 else str(b) for b, n in runs))
    return ", ".join(days)


def _times_plain(time_slots: tuple[TimeSlot, ...]) -> str:
    """The same slots as JSON objects with clock-bin text, the way `encode_plain` writes an event's time."""
    return json.dumps([{"weekday": WEEKDAYS[s.weekday], "hour_bin": HOUR_BINS[s.hour_bin]} for s in time_slots],
                      separators=(",", ":"))


def build_messages(profile: Profile, grounding: Grounding, scenario: Scenario, schema: Schema, vocabulary: Vocabulary,
                   *, length: int, compact: bool, persona_text: str = "", slot: int = 0) -> tuple[ChatMessage, ChatMessage]:
    """System and user message for sequence `slot` of a profile, compact (sent) or plain (counted only).

    A profile's sequences differ only in their time skeleton, stated at the very end, so their prompts share
    everything before it: a server that keeps the previous prompt's computed prefix reads only the rest."""
    book = CodeBook(grounding.legend_actions)
    time_slots = grounding.skeletons[slot] if grounding.skeletons is not None else None
    if compact:
        name = book.code_of
        legend = "\n".join(book.legend(vocabulary))
        exemplars = "\n".join(encode_compact(e.events, book) for e in grounding.exemplars)
        habits = " ".join(f"{name(a)}>{name(b)}" for a, b, _ in grounding.habits)
        answer_items = "codes"
        times = _times_compact(time_slots) if time_slots is not None else ""
    else:
        name = data_text
        legend = ""
        exemplars = "\n".join(encode_plain(e.events) for e in grounding.exemplars)
        habits = "; ".join(f"{data_text(a)} then {data_text(b)}" for a, b, _ in grounding.habits)
        answer_items = 'events, each {"action":"<name>"}'
        times = _times_plain(time_slots) if time_slots is not None else ""
    profile_line = _profile_line(profile, scenario, name)
    if persona_text:
        profile_line += f". {defuse(persona_text)}"
    values = {
        "subject": SUBJECTS[schema.domain], "action_meaning": schema.action_meaning, "length": length,
        "has_time": time_slots is not None, "compact": compact, "scenario": " ".join(scenario.sentences),
        "scenario_notes": " ".join(data_text(note) for note in scenario.notes), "profile": profile_line,
        "legend": legend, "habits": habits, "exemplars": exemplars, "answer_items": answer_items, "times": times,
    }
    env = _templates()
    return (ChatMessage("system", env.get_template("system.txt").render(values)),
            ChatMessage("user", env.get_template("user.txt").render(values)))
