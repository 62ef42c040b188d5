"""Domain rules derived from the vocabulary's `Device:capability command` tokens.

For a capability with opposite state commands (on/off, open/close, lock/unlock, mute/unmute), the same
state command twice in a row for one device, with no opposite command between, is suspicious ("a
light switched off twice without being on"). A rule is enforced only when the real training episodes
break it rarely (below `max_real_rate` of episodes): a "rule" the real homes break often (several
lights of one type, missed events) is a property of the data, not an error, and is only reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OPPOSITES = {"on": "off", "off": "on", "open": "close", "close": "open", "lock": "unlock", "unlock": "lock",
             "mute": "unmute", "unmute": "mute"}


def _state_command(action: str) -> tuple[str, str, str] | None:
    """(device, capability, command) for tokens like 'Light:switch on', else None."""
    device, sep, rest = action.partition(":")
    words = rest.split()
    if not sep or len(words) != 2 or words[1] not in OPPOSITES:
        return None
    return device, words[0], words[1]


def repeated_states(actions: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every (device, capability, command) issued again while already in that state."""
    last: dict[tuple[str, str], str] = {}
    repeats = []
    for action in actions:
        parsed = _state_command(action)
        if parsed is None:
            continue
        device, capability, command = parsed
        if last.get((device, capability)) == command:
            repeats.append(parsed)
        last[(device, capability)] = command
    return repeats


@dataclass(frozen=True)
class DomainRules:
    enforced: frozenset[str]  # state commands whose repetition is rejected
    real_rates: dict[str, float]  # share of real episodes repeating each state command

    @classmethod
    def from_real(cls, vocabulary_actions: Iterable[str], real_episodes: Iterable[Sequence[str]],
                  max_real_rate: float = 0.01) -> DomainRules:
        commands = {p[2] for a in vocabulary_actions if (p := _state_command(a)) is not None}
        counts = dict.fromkeys(commands, 0)
        n = 0
        for actions in real_episodes:
            n += 1
            for command in {r[2] for r in repeated_states(actions)}:
                counts[command] += 1
        rates = {c: counts[c] / max(n, 1) for c in sorted(commands)}
        return cls(frozenset(c for c, r in rates.items() if r < max_real_rate), rates)

    @classmethod
    def none(cls) -> DomainRules:
        return cls(frozenset(), {})

    def violations(self, actions: Sequence[str]) -> list[str]:
        return [f"{device} '{capability} {command}' twice without '{OPPOSITES[command]}' between"
                for device, capability, command in repeated_states(actions) if command in self.enforced]
