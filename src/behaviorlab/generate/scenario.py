"""Environment-change scenarios (IoTGen's "the environment changed"): a sentence for the prompt plus
hard limits on the time skeleton, so the scenario is both told to the LLM and enforced in code.

Built-in scenarios speak in our own words. Words that come from the user or the data (a new device's
name, a free-text `text:` scenario) are `notes`: the prompt shows them only inside its <data> block,
defused like real data, so a scenario argument can describe a change but never give an instruction.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from behaviorlab.errors import ConfigError
from behaviorlab.schema import WEEKDAYS, Vocabulary

ALL_BINS = frozenset(range(8))
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True)
class Scenario:
    sentences: tuple[str, ...] = ()  # our wording, shown as part of the task
    notes: tuple[str, ...] = ()  # the user's words (device names, free text), shown only as data
    bins: frozenset[int] = ALL_BINS  # allowed 3-hour bins
    days: frozenset[int] = ALL_DAYS  # allowed weekdays
    extra_occupants: int = 0
    new_devices: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return " ".join((*self.sentences, *self.notes))


_BUILT_IN: dict[str, Scenario] = {
    "night": Scenario(("It is night now (21:00 to 06:00): people are going to bed, asleep or up at night.",),
                      bins=frozenset({7, 0, 1})),
    "after-dark": Scenario(("It is evening or night (18:00 to 06:00): people come home, relax, go to bed, sleep.",),
                           bins=frozenset({6, 7, 0, 1})),
    "day": Scenario(("It is daytime (06:00 to 18:00).",), bins=frozenset({2, 3, 4, 5})),
    "evening": Scenario(("It is evening (18:00 to 24:00).",), bins=frozenset({6, 7})),
    "weekend": Scenario(("It is the weekend.",), days=frozenset({5, 6})),
    "weekday": Scenario(("It is a working day (Monday to Friday).",), days=frozenset(range(5))),
    "winter": Scenario(("It is winter: cold, dark early; heating and lights are used more.",)),
    "summer": Scenario(("It is summer: hot, light until late; cooling and fans are used more.",)),
    "more-occupants": Scenario(("Two more people have moved in, so more things happen at once.",), extra_occupants=2),
}
NEW_DEVICE, FREE_TEXT = "new-device:", "text:"
MAX_ARGUMENT_CHARS = 300


def scenario_names() -> list[str]:
    return [*sorted(_BUILT_IN), f"{NEW_DEVICE}<Device>", f"{FREE_TEXT}<one sentence>"]


def parse_scenario(names: list[str], vocabulary: Vocabulary | None = None) -> Scenario:
    """Combine named scenarios; limits intersect. Unknown names are errors listing the known ones.

    With the real log's `vocabulary`, a new device must be one of its devices (the output can only use
    the vocabulary's actions, so an unknown device could never appear).
    """
    sentences: list[str] = []
    notes: list[str] = []
    bins, days, occupants, devices = set(ALL_BINS), set(ALL_DAYS), 0, []
    unknown, malformed = [], []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if not _one_line_of_text(name):
            malformed.append(repr(name[:60]))
            continue
        if name.startswith(FREE_TEXT) and name[len(FREE_TEXT):].strip():
            notes.append(name[len(FREE_TEXT):].strip())
            sentences.append("The environment changed as the scenario notes in the data describe.")
            continue
        if name.startswith(NEW_DEVICE) and name[len(NEW_DEVICE):].strip():
            device = name[len(NEW_DEVICE):].strip()
            devices.append(device)
            notes.append(f"new device: {device}")
            sentences.append("A new device was installed (named in the scenario notes); the household starts using it.")
            continue
        part = _BUILT_IN.get(name)
        if part is None:
            unknown.append(name)
            continue
        sentences.extend(part.sentences)
        bins &= part.bins
        days &= part.days
        occupants += part.extra_occupants
    if malformed:
        raise ConfigError(f"Scenario arguments must be one line of printable text of at most {MAX_ARGUMENT_CHARS} "
                          f"characters: {', '.join(malformed)}",
                          hint="Pass each scenario as its own --scenario; describe a change in one sentence with text:.")
    if unknown:
        raise ConfigError(f"Unknown scenario(s): {', '.join(unknown)}", hint=f"Choose from: {', '.join(scenario_names())}.")
    if not bins or not days:
        raise ConfigError(f"The scenarios {names} exclude every time of the week",
                          hint="Combine scenarios that can hold at the same time (e.g. night and weekend).")
    if vocabulary is not None:
        _check_devices(devices, vocabulary)
    return Scenario(tuple(sentences), tuple(notes), frozenset(bins), frozenset(days), occupants, tuple(devices))


def _one_line_of_text(name: str) -> bool:
    return len(name) <= MAX_ARGUMENT_CHARS and name.isprintable()


def _check_devices(devices: list[str], vocabulary: Vocabulary) -> None:
    known = sorted({action.split(":", 1)[0] for action in vocabulary.actions if ":" in action})
    missing = [device for device in devices if device not in known]
    if not missing:
        return
    close = [match for device in missing for match in difflib.get_close_matches(device, known, n=1)]
    suggestion = f"Did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(f"new-device: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not a device of this data",
                      hint=f"{suggestion}The devices are: {', '.join(known) or '(none: actions are not Device:control)'}.")


def describe_days(days: frozenset[int]) -> str:
    return ", ".join(WEEKDAYS[d] for d in sorted(days))
