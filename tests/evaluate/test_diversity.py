"""Population diversity and personality on hand-made populations."""

from __future__ import annotations

import math

import pytest

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.diversity import diversity_table, personality, population_diversity, profile_consistency
from behaviorlab.schema import Profile

VOCAB = ["a", "b", "c", "d"]


def test_population_diversity_hand_computed(sequences_log) -> None:
    log = sequences_log([["a", "a"], ["b", "b"]], vocabulary=VOCAB)
    values = population_diversity(log)
    assert values["action_entropy_bits"] == pytest.approx(1.0)  # two actions, equally often
    assert values["action_entropy_normalised"] == pytest.approx(0.5)  # log2(4) = 2 bits possible
    assert values["action_coverage"] == pytest.approx(0.5)
    assert values["distinct_1"] == pytest.approx(2 / 4)
    assert values["distinct_2"] == pytest.approx(2 / 2)
    # each person's mix (1, 0) vs the population (1/2, 1/2): JSD = (log2(4/3) + (log2(2/3) + 1) / 2) / 2
    expected = (math.log2(4 / 3) + (math.log2(2 / 3) + 1) / 2) / 2
    assert values["person_mix_spread_jsd"] == pytest.approx(expected)


def test_clones_have_no_spread(sequences_log) -> None:
    values = population_diversity(sequences_log([["a", "b"]] * 5, vocabulary=VOCAB))
    assert values["person_mix_spread_jsd"] == pytest.approx(0.0)


def test_personality_distinguishes_consistent_people_from_random_ones(sequences_log) -> None:
    consistent = sequences_log([["a", "a", "b"], ["a", "b", "a"], ["c", "d", "d"], ["d", "c", "d"]],
                          vocabulary=VOCAB, persons=["p1", "p1", "p2", "p2"])
    p = personality(consistent)
    assert p.unit == "sequences" and p.n_people == 2
    assert p.within > p.between
    assert p.nearest_same_person == 1.0
    assert p.chance == pytest.approx(1 / 3)
    mixed = sequences_log([["a", "a", "b"], ["c", "d", "d"], ["a", "b", "a"], ["d", "c", "d"]],
                     vocabulary=VOCAB, persons=["p1", "p1", "p2", "p2"])
    q = personality(mixed)
    assert q.within < q.between and q.nearest_same_person == 0.0


def test_personality_falls_back_to_halves_for_single_sequence_users(sequences_log) -> None:
    log = sequences_log([["a", "a", "a", "a"], ["c", "c", "c", "c"], ["b", "b", "b", "b"]], vocabulary=VOCAB)
    p = personality(log)
    assert p.unit == "halves" and p.within == pytest.approx(1.0) and p.between == pytest.approx(0.0)


def test_personality_needs_two_people(sequences_log) -> None:
    with pytest.raises(EvaluationError):
        personality(sequences_log([["a", "b"], ["a", "b"]], vocabulary=VOCAB, persons=["p", "p"]))


def test_profile_consistency(sequences_log) -> None:
    log = sequences_log([["a", "a", "b"], ["c", "c", "c"]], vocabulary=VOCAB, persons=["p1", "p2"])
    profiles = {"p1": Profile(profile_id="p1", preferred_actions=["a"]),
                "p2": Profile(profile_id="p2", preferred_actions=["c"])}
    values = profile_consistency(log, profiles)
    assert values["own_profile_share"] == pytest.approx((2 / 3 + 1) / 2)
    assert values["other_profile_share"] == pytest.approx(0.0)


def test_diversity_table_pairs_synthetic_with_real(sequences_log) -> None:
    real = sequences_log([["a", "b", "c", "d"], ["b", "c", "d", "a"], ["c", "d", "a", "b"]] * 2, vocabulary=VOCAB)
    synth = sequences_log([["a", "a"], ["a", "a"], ["b", "b"], ["b", "b"]], vocabulary=VOCAB,
                     persons=["p1", "p1", "p2", "p2"], prefix="s")
    rows = {row.name: row for row in diversity_table(real, synth)}
    # 3 sequences on each side (half the real users): any 3 of the synthetic ones cover a and b
    assert rows["action_coverage"].value == pytest.approx(0.5) and rows["action_coverage"].reference == pytest.approx(1.0)
    assert rows["personality_gap"].value == pytest.approx(1.0)
