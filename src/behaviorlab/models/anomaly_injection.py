"""Seeded injection of the SmartGuard anomaly kinds into smart-home sequences.

An anomaly detector is trained on normal sequences only; to choose its threshold (on validation) and
to report precision/recall (on test) it needs sequences known to be abnormal. Real labelled anomalies
are not published for SmartThings, so, as in SmartGuard (KDD 2024), we inject them:

- `unusual_time`: one event is moved to the hour bin in which its device-control is rarest in training;
- `unusual_device`: one event is replaced by a device-control that never followed the previous
  event in training, chosen among the rarest such device-controls;
- `flood`: one action of the sequence is repeated over a run of `flood_length` consecutive positions;
- `impossible_pair`: two consecutive events become the same state command of one device
  (`on` right after `on`, or `off` right after `off`, ...) with no opposite command between them.

Every injector returns a changed copy or `None` when the sequence offers no place for that kind (for
example `unusual_time` on a log without hour bins); callers count the `None`s, they never pad them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic import Field

from behaviorlab.config import StrictConfig

AnomalyKind = Literal["unusual_time", "unusual_device", "flood", "impossible_pair"]
ANOMALY_KINDS: tuple[AnomalyKind, ...] = ("unusual_time", "unusual_device", "flood", "impossible_pair")
NORMAL = "normal"

# A device-control token ends with its command; these commands come in opposite pairs, so two equal
# ones in a row (without the opposite between them) describe a state change that cannot happen.
OPPOSITE_COMMANDS: dict[str, str] = {"on": "off", "off": "on", "open": "close", "close": "open",
                                     "lock": "unlock", "unlock": "lock"}


@dataclass(frozen=True)
class ContextSequence:
    """One sequence of actions, optionally with one context value (the hour bin) per event."""

    source: str                     # id of the sequence it came from (user_id in the EventLog)
    actions: tuple[str, ...]
    context: tuple[str, ...] | None = None
    kind: str = NORMAL              # "normal" or an AnomalyKind
    position: int | None = None     # the first event an injector changed

    @property
    def is_anomaly(self) -> bool:
        return self.kind != NORMAL


class InjectionConfig(StrictConfig):
    kinds: tuple[AnomalyKind, ...] = ANOMALY_KINDS
    rate: float = Field(0.1, gt=0.0, le=1.0)      # fraction of the normal sequences copied per kind
    flood_length: int = Field(5, ge=2)
    rare_quantile: float = Field(0.2, gt=0.0, le=1.0)  # unusual devices come from the rarest fifth
    seed: int = 0


@dataclass(frozen=True)
class TrainingStatistics:
    """What the injectors know about normal behaviour, counted on the training sequences only."""

    action_counts: Counter[str]
    bigram_counts: Counter[tuple[str, str]]
    context_counts: Counter[tuple[str, str]]    # (action, context value) -> count
    context_values: tuple[str, ...]
    vocabulary: tuple[str, ...]
    context_bigram_counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (previous value, value)

    @classmethod
    def from_sequences(cls, sequences: Sequence[ContextSequence], vocabulary: Sequence[str],
                       context_values: Sequence[str] = ()) -> TrainingStatistics:
        actions: Counter[str] = Counter()
        bigrams: Counter[tuple[str, str]] = Counter()
        contexts: Counter[tuple[str, str]] = Counter()
        context_bigrams: Counter[tuple[str, str]] = Counter()
        seen_values: set[str] = set(context_values)
        for sequence in sequences:
            actions.update(sequence.actions)
            bigrams.update(zip(sequence.actions, sequence.actions[1:], strict=False))
            if sequence.context is not None:
                contexts.update(zip(sequence.actions, sequence.context, strict=True))
                context_bigrams.update(zip(sequence.context, sequence.context[1:], strict=False))
                seen_values.update(sequence.context)
        return cls(actions, bigrams, contexts, tuple(sorted(seen_values)), tuple(vocabulary), context_bigrams)


Injector = Callable[[ContextSequence, TrainingStatistics, InjectionConfig, random.Random], "ContextSequence | None"]


def inject_unusual_time(sequence: ContextSequence, stats: TrainingStatistics, config: InjectionConfig,
                        rng: random.Random) -> ContextSequence | None:
    if sequence.context is None or len(stats.context_values) < 2:
        return None
    position = rng.randrange(len(sequence.actions))
    action, current = sequence.actions[position], sequence.context[position]
    others = [v for v in stats.context_values if v != current]
    rarest = min(stats.context_counts[(action, v)] for v in others)
    # Only a move to a bin rarer than the current one is unusual; otherwise there is nothing to inject.
    if rarest >= stats.context_counts[(action, current)]:
        return None
    new_value = rng.choice([v for v in others if stats.context_counts[(action, v)] == rarest])
    context = list(sequence.context)
    context[position] = new_value
    return replace(sequence, context=tuple(context), kind="unusual_time", position=position)


def inject_unusual_device(sequence: ContextSequence, stats: TrainingStatistics, config: InjectionConfig,
                          rng: random.Random) -> ContextSequence | None:
    position = rng.randrange(len(sequence.actions))
    previous = sequence.actions[position - 1] if position > 0 else None
    # Never seen after the previous event in training, and among the rarest such actions overall.
    unseen = [a for a in stats.vocabulary
              if a != sequence.actions[position] and (previous is None or stats.bigram_counts[(previous, a)] == 0)]
    if not unseen:
        return None
    unseen.sort(key=lambda a: (stats.action_counts[a], a))
    candidates = unseen[: max(1, round(config.rare_quantile * len(stats.vocabulary)))]
    actions = list(sequence.actions)
    actions[position] = rng.choice(candidates)
    return replace(sequence, actions=tuple(actions), kind="unusual_device", position=position)


def inject_flood(sequence: ContextSequence, stats: TrainingStatistics, config: InjectionConfig,
                 rng: random.Random) -> ContextSequence | None:
    length = config.flood_length
    if len(sequence.actions) < length:
        return None
    start = rng.randrange(len(sequence.actions) - length + 1)
    action = sequence.actions[rng.randrange(len(sequence.actions))]
    actions = list(sequence.actions)
    actions[start:start + length] = [action] * length
    if tuple(actions) == sequence.actions:  # the run was already there: nothing was injected
        return None
    return replace(sequence, actions=tuple(actions), kind="flood", position=start)


def switch_pairs(vocabulary: Sequence[str]) -> list[tuple[str, str]]:
    """(command, opposite command) tokens present in the vocabulary, e.g. ('Light:switch on', 'Light:switch off')."""
    known = set(vocabulary)
    pairs = []
    for token in vocabulary:
        stem, _, command = token.rpartition(" ")
        opposite = OPPOSITE_COMMANDS.get(command)
        if stem and opposite and f"{stem} {opposite}" in known:
            pairs.append((token, f"{stem} {opposite}"))
    return pairs


def inject_impossible_pair(sequence: ContextSequence, stats: TrainingStatistics, config: InjectionConfig,
                           rng: random.Random) -> ContextSequence | None:
    pairs = switch_pairs(stats.vocabulary)
    if not pairs or len(sequence.actions) < 2:
        return None
    # Prefer a device the home actually uses in this sequence, so only the order is impossible.
    in_sequence = [p for p in pairs if p[0] in sequence.actions or p[1] in sequence.actions]
    command, _ = rng.choice(in_sequence or pairs)
    position = rng.randrange(len(sequence.actions) - 1)
    actions = list(sequence.actions)
    actions[position] = actions[position + 1] = command
    return replace(sequence, actions=tuple(actions), kind="impossible_pair", position=position)


INJECTORS: dict[str, Injector] = {
    "unusual_time": inject_unusual_time,
    "unusual_device": inject_unusual_device,
    "flood": inject_flood,
    "impossible_pair": inject_impossible_pair,
}


@dataclass(frozen=True)
class InjectedSet:
    """Normal sequences plus injected copies; `skipped[kind]` counts sequences that offered no place."""

    sequences: list[ContextSequence]
    skipped: dict[str, int]

    def counts(self) -> dict[str, int]:
        return dict(Counter(s.kind for s in self.sequences))


def inject_anomalies(normal: Sequence[ContextSequence], stats: TrainingStatistics,
                     config: InjectionConfig) -> InjectedSet:
    """All `normal` sequences, plus for each kind an anomalous copy of a seeded `rate` share of them."""
    rng = random.Random(config.seed)
    result = list(normal)
    skipped: dict[str, int] = {}
    for kind in config.kinds:
        chosen = rng.sample(range(len(normal)), k=max(1, round(config.rate * len(normal)))) if normal else []
        skipped[kind] = 0
        for index in chosen:
            injected = INJECTORS[kind](normal[index], stats, config, rng)
            if injected is None:
                skipped[kind] += 1
            else:
                result.append(injected)
    return InjectedSet(result, skipped)
