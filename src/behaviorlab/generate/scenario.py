"""Environment-change scenarios (IoTGen's "the environment changed"): a sentence for the prompt plus
hard limits on the time skeleton, so the scenario is both told to the LLM and enforced in code."""

from __future__ import annotations

from dataclasses import dataclass, field

from behaviorlab.errors import ConfigError
from behaviorlab.schema import WEEKDAYS

ALL_BINS = frozenset(range(8))
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True)
class Scenario:
    sentences: tuple[str, ...] = ()
    bins: frozenset[int] = ALL_BINS  # allowed 3-hour bins
    days: frozenset[int] = ALL_DAYS  # allowed weekdays
    extra_occupants: int = 0
    new_devices: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


_BUILT_IN: dict[str, Scenario] = {
    "night": Scenario(("It is night now (21:00 to 06:00): people are going to bed, asleep or up at night.",),
                      bins=frozenset({7, 0, 1})),
    "day": Scenario(("It is daytime (06:00 to 18:00).",), bins=frozenset({2, 3, 4, 5})),
    "evening": Scenario(("It is evening (18:00 to 24:00).",), bins=frozenset({6, 7})),
    "weekend": Scenario(("It is the weekend.",), days=frozenset({5, 6})),
    "weekday": Scenario(("It is a working day (Monday to Friday).",), days=frozenset(range(5))),
    "winter": Scenario(("It is winter: cold, dark early; heating and lights are used more.",)),
    "summer": Scenario(("It is summer: hot, light until late; cooling and fans are used more.",)),
    "more-occupants": Scenario(("Two more people have moved in, so more things happen at once.",), extra_occupants=2),
}
NEW_DEVICE = "new-device:"


def scenario_names() -> list[str]:
    return [*sorted(_BUILT_IN), f"{NEW_DEVICE}<Device>"]


def parse_scenario(names: list[str]) -> Scenario:
    """Combine named scenarios; limits intersect. Unknown names are errors listing the known ones."""
    sentences: list[str] = []
    bins, days, occupants, devices = set(ALL_BINS), set(ALL_DAYS), 0, []
    unknown = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name.startswith(NEW_DEVICE) and len(name) > len(NEW_DEVICE):
            device = name[len(NEW_DEVICE):]
            devices.append(device)
            sentences.append(f"A new device was installed: {device}; the household starts using it.")
            continue
        part = _BUILT_IN.get(name)
        if part is None:
            unknown.append(name)
            continue
        sentences.extend(part.sentences)
        bins &= part.bins
        days &= part.days
        occupants += part.extra_occupants
    if unknown:
        raise ConfigError(f"Unknown scenario(s): {', '.join(unknown)}", hint=f"Choose from: {', '.join(scenario_names())}.")
    if not bins or not days:
        raise ConfigError(f"The scenarios {names} exclude every time of the week",
                          hint="Combine scenarios that can hold at the same time (e.g. night and weekend).")
    return Scenario(tuple(sentences), frozenset(bins), frozenset(days), occupants, tuple(devices))


def describe_days(days: frozenset[int]) -> str:
    return ", ".join(WEEKDAYS[d] for d in sorted(days))
