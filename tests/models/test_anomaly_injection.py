"""Each injector produces exactly the anomaly it names, seeded and counted."""

from __future__ import annotations

import random

import pytest

from behaviorlab.models.anomaly import sequences_with_context
from behaviorlab.models.anomaly_injection import (
    ContextSequence,
    InjectionConfig,
    TrainingStatistics,
    inject_anomalies,
    inject_flood,
    inject_impossible_pair,
    inject_unusual_device,
    inject_unusual_time,
    switch_pairs,
)
from behaviorlab.schema import HOUR_BINS

CONFIG = InjectionConfig()


@pytest.fixture(scope="module")
def home(make_home_log):
    log = make_home_log()
    train = sequences_with_context(log.filter(log.frame["split"] == "train"), "hour_bin")
    test = sequences_with_context(log.filter(log.frame["split"] == "test"), "hour_bin")
    stats = TrainingStatistics.from_sequences(train, log.vocabulary.actions, HOUR_BINS)
    return stats, test


def changed_positions(a: tuple, b: tuple) -> list[int]:
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def test_unusual_time_moves_one_event_to_its_rarest_hour(home):
    stats, sequences = home
    rng = random.Random(0)
    for sequence in sequences[:40]:
        injected = inject_unusual_time(sequence, stats, CONFIG, rng)
        assert injected is not None and injected.kind == "unusual_time"
        assert injected.actions == sequence.actions
        [position] = changed_positions(sequence.context, injected.context)
        action = sequence.actions[position]
        new_count = stats.context_counts[(action, injected.context[position])]
        assert new_count < stats.context_counts[(action, sequence.context[position])]
        others = [v for v in stats.context_values if v != sequence.context[position]]
        assert new_count == min(stats.context_counts[(action, v)] for v in others)


def test_unusual_time_needs_context(home):
    stats, sequences = home
    bare = ContextSequence("s", sequences[0].actions, None)
    assert inject_unusual_time(bare, stats, CONFIG, random.Random(0)) is None


def test_unusual_device_inserts_a_rare_action_never_seen_after_its_predecessor(home):
    stats, sequences = home
    rng = random.Random(1)
    median_count = sorted(stats.action_counts[a] for a in stats.vocabulary)[len(stats.vocabulary) // 2]
    injected_count = 0
    for sequence in sequences[:40]:
        state = rng.getstate()
        injected = inject_unusual_device(sequence, stats, CONFIG, rng)
        if injected is None:  # only when every other action has followed the chosen event's predecessor
            rng.setstate(state)
            position = rng.randrange(len(sequence.actions))
            assert position > 0 and all(stats.bigram_counts[(sequence.actions[position - 1], a)] > 0
                                        for a in stats.vocabulary if a != sequence.actions[position])
            continue
        injected_count += 1
        [position] = changed_positions(sequence.actions, injected.actions)
        new = injected.actions[position]
        assert stats.action_counts[new] < median_count and injected.context == sequence.context
        if position > 0:
            assert stats.bigram_counts[(injected.actions[position - 1], new)] == 0
    assert injected_count >= 30


def test_flood_repeats_one_action_over_a_run(home):
    stats, sequences = home
    rng = random.Random(2)
    for sequence in sequences[:40]:
        injected = inject_flood(sequence, stats, CONFIG, rng)
        if injected is None:  # only when the run was already there
            continue
        start = injected.position
        run = injected.actions[start:start + CONFIG.flood_length]
        assert len(set(run)) == 1 and run[0] in sequence.actions
        assert injected.actions[:start] == sequence.actions[:start]
        assert injected.actions[start + CONFIG.flood_length:] == sequence.actions[start + CONFIG.flood_length:]
        assert injected.actions != sequence.actions


def test_flood_refuses_when_nothing_would_change(home):
    stats, _ = home
    uniform = ContextSequence("s", ("TV:switch on",) * 10, ("(18~21)",) * 10)
    assert inject_flood(uniform, stats, CONFIG, random.Random(0)) is None


def test_impossible_pair_repeats_a_state_command(home):
    stats, sequences = home
    pairs = dict(switch_pairs(stats.vocabulary))
    assert pairs["Light:switch on"] == "Light:switch off" and pairs["Door:lock lock"] == "Door:lock unlock"
    assert "Camera:refresh refresh" not in pairs
    rng = random.Random(3)
    for sequence in sequences[:40]:
        injected = inject_impossible_pair(sequence, stats, CONFIG, rng)
        p = injected.position
        assert injected.actions[p] == injected.actions[p + 1] and injected.actions[p] in pairs
        assert changed_positions(sequence.actions, injected.actions) and set(
            changed_positions(sequence.actions, injected.actions)) <= {p, p + 1}


def test_injection_is_seeded_and_counts_every_kind(home):
    stats, sequences = home
    config = InjectionConfig(rate=0.25, seed=7)
    first = inject_anomalies(sequences, stats, config)
    again = inject_anomalies(sequences, stats, config)
    other = inject_anomalies(sequences, stats, config.model_copy(update={"seed": 8}))
    assert first.sequences == again.sequences and first.sequences != other.sequences
    counts = first.counts()
    assert counts["normal"] == len(sequences)
    for kind in config.kinds:
        assert counts.get(kind, 0) + first.skipped[kind] == round(0.25 * len(sequences))
    assert counts["unusual_device"] > 0 and counts["impossible_pair"] > 0 and counts["unusual_time"] > 0
