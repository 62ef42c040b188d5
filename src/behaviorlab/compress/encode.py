"""Compact text encoding of sequences for prompts (the encoding half of SPPC), and the plain baseline.

Compact: each action gets a short code (A1, A2, ...) defined once in a legend; time is the weekday
written only when it changes and the 3-hour bin index only when it changes; a run of identical events
is written once with a count. `Wed 6:A1*3 A2 7:A1 | Thu 0:A5` reads: Wednesday, bin 6 (18-21h),
A1 three times then A2, bin 7 A1; Thursday bin 0 A5.
Plain: the same events as JSON objects with full action names, the way one would prompt without SPPC.

Real text (action names, descriptions) only ever enters a prompt through `data_text`, which quotes it
and defuses the data-block delimiters, so a name cannot close the block or read as an instruction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from behaviorlab.profiles.episodes import Event
from behaviorlab.schema import HOUR_BINS, WEEKDAYS, Vocabulary

DAY_SEPARATOR = " | "


def defuse(text: str) -> str:
    """Text from the data with angle brackets replaced, so it can neither open nor close a <data> block."""
    return text.replace("<", "\u2039").replace(">", "\u203a")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 :._/()&'-]*")


def data_text(text: str) -> str:
    """Text from the data, safe inside a <data> block: defused and JSON-quoted (one line, quotes escaped)."""
    return json.dumps(defuse(text), ensure_ascii=False)


def legend_name(text: str) -> str:
    """An action name for a legend line: as is when it is plain words, else quoted by `data_text`.

    Quotes cost tokens on every line; plain names (letters, digits, spaces, `:._/()&'-`) cannot break
    the line or the data block, so only other names need them.
    """
    return text if _PLAIN_NAME.fullmatch(text) else data_text(text)


@dataclass(frozen=True)
class CodeBook:
    """Short codes for the actions a prompt uses; codes are mapped back to names in code, never by the LLM."""

    actions: tuple[str, ...]

    @classmethod
    def for_actions(cls, actions: Iterable[str]) -> CodeBook:
        """Codes in first-seen order, each action once."""
        return cls(tuple(dict.fromkeys(actions)))

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(f"A{i + 1}" for i in range(len(self.actions)))

    def code_of(self, action: str) -> str:
        return f"A{self.actions.index(action) + 1}"

    def action_of(self, code: str) -> str | None:
        """The action a code stands for, or None for a code not in this book."""
        if not code.startswith("A") or not code[1:].isdigit():
            return None
        index = int(code[1:]) - 1
        return self.actions[index] if 0 <= index < len(self.actions) else None

    def legend(self, vocabulary: Vocabulary) -> list[str]:
        """One line per code: `A1 Light:switch on` (plus the quoted description when it says more than the name)."""
        lines = []
        for code, action in zip(self.codes, self.actions, strict=True):
            description = vocabulary.describe(action) if action in vocabulary else action
            extra = f" {data_text(description)}" if _says_more(description, action) else ""
            lines.append(f"{code} {legend_name(action)}{extra}")
        return lines


def _says_more(description: str, action: str) -> bool:
    """Whether a description adds words to the action name (not just spacing, case or punctuation)."""
    def letters(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())
    return letters(description) != letters(action)


def encode_compact(events: Sequence[Event], book: CodeBook) -> str:
    """Compact text of one sequence (see module docstring)."""
    parts: list[str] = []
    day: int | None = None
    hour_bin: int | None = None
    runs: list[tuple[Event, int]] = []
    for event in events:
        if runs and runs[-1][0] == event:
            runs[-1] = (event, runs[-1][1] + 1)
        else:
            runs.append((event, 1))
    for event, count in runs:
        token = book.code_of(event.action) + (f"*{count}" if count > 1 else "")
        if event.weekday is not None and event.weekday != day:
            if parts:
                parts.append(DAY_SEPARATOR.strip())
            parts.append(WEEKDAYS[event.weekday])
            day, hour_bin = event.weekday, None
        if event.hour_bin is not None and event.hour_bin != hour_bin:
            token = f"{event.hour_bin}:{token}"
            hour_bin = event.hour_bin
        parts.append(token)
    return " ".join(parts)


def encode_plain(events: Sequence[Event]) -> str:
    """Compact JSON with full action names and clock-bin text: the baseline without SPPC."""
    rows = []
    for event in events:
        row: dict[str, str] = {}
        if event.weekday is not None and event.hour_bin is not None:
            row = {"weekday": WEEKDAYS[event.weekday], "hour_bin": HOUR_BINS[event.hour_bin]}
        rows.append(row | {"action": event.action})
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
