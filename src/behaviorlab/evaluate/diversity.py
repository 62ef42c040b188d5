"""Diversity of a population and the personality of each simulated person (BehaviorGen's balance).

Population diversity: how much of the action space the population covers and how different people's
action mixes are. Personality: a person's own sequences resemble each other more than other people's,
and follow the preferred actions of the profile that produced them. A "person" is the `profile_id`
column when the log has one (synthetic runs), else the user id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from behaviorlab.errors import EvaluationError
from behaviorlab.evaluate.fidelity import MetricRow, jensen_shannon, matched_samples, ngrams
from behaviorlab.schema import ACTION, PERSON, USER, EventLog, Profile


def person_sequences(log: EventLog) -> dict[str, list[list[str]]]:
    """{person: [sequence, ...]}: one sequence per user id, grouped by `profile_id` when present."""
    person_of: Mapping[str, str]
    if PERSON in log.frame.columns:
        pairs = log.frame.select(USER, PERSON).unique(maintain_order=True)
        person_of = dict(zip(pairs.get_column(USER).to_list(), pairs.get_column(PERSON).to_list()))
    else:
        person_of = {u: u for u in log.users()}
    grouped: dict[str, list[list[str]]] = {}
    for user, seq in log.action_sequences().items():
        grouped.setdefault(str(person_of[user]), []).append(seq)
    return grouped


def _mix(seqs: Sequence[Sequence[str]], index: Mapping[str, int]) -> np.ndarray:
    counts = np.zeros(len(index))
    for seq in seqs:
        for action in seq:
            counts[index[action]] += 1
    return counts


def population_diversity(log: EventLog, ngram_orders: Sequence[int] = (1, 2, 3)) -> dict[str, float]:
    """Entropy (bits) and vocabulary coverage of actions, distinct-n, and the spread of per-person mixes
    (mean JSD, in bits, of each person's action mix from the population's)."""
    actions = log.frame.get_column(ACTION).to_list()
    counts = np.array(list(Counter(actions).values()), dtype=np.float64)
    p = counts / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    values = {
        "action_entropy_bits": entropy,
        "action_entropy_normalised": entropy / np.log2(len(log.vocabulary)) if len(log.vocabulary) > 1 else 0.0,
        "action_coverage": log.frame.get_column(ACTION).n_unique() / len(log.vocabulary),
    }
    seqs = list(log.action_sequences().values())
    for n in ngram_orders:
        grams = [g for s in seqs for g in ngrams(s, n)]
        values[f"distinct_{n}"] = len(set(grams)) / len(grams) if grams else float("nan")
    people = person_sequences(log)
    index = {a: i for i, a in enumerate(log.vocabulary.actions)}
    population = _mix(seqs, index)
    values["person_mix_spread_jsd"] = float(np.mean([jensen_shannon(_mix(s, index), population) for s in people.values()]))
    return values


def _cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    return unit @ unit.T


@dataclass(frozen=True)
class Personality:
    """Within- vs between-person similarity of sequences (cosine of action counts)."""

    within: float  # mean similarity of two sequences of the same person
    between: float  # mean similarity of two sequences of different people
    nearest_same_person: float  # share of sequences whose most similar other sequence is the same person's
    chance: float  # that share if people were unrelated to sequences
    unit: str  # "sequences" (a person's own sequences) or "halves" (each sequence cut in two)
    n_people: int

    @property
    def gap(self) -> float:
        return self.within - self.between


def personality(log: EventLog, max_units: int = 3000, seed: int = 0) -> Personality:
    """Compare each person's sequences with each other and with other people's. When no person has two
    sequences (e.g. real logs with one sequence per user), each sequence is cut into two halves instead."""
    people = person_sequences(log)
    unit = "sequences"
    if all(len(seqs) < 2 for seqs in people.values()):
        unit = "halves"
        people = {p: [s[: len(s) // 2], s[len(s) // 2:]] for p, seqs in people.items() for s in seqs[:1] if len(s) >= 2}
    people = {p: seqs for p, seqs in people.items() if len(seqs) >= 2}
    if len(people) < 2:
        raise EvaluationError("Personality needs at least two people with two or more sequences (or events)",
                              hint="Generate several sequences per profile.")
    labels = np.array([i for i, seqs in enumerate(people.values()) for _ in seqs])
    index = {a: i for i, a in enumerate(log.vocabulary.actions)}
    vectors = np.stack([_mix([s], index) for seqs in people.values() for s in seqs])  # [U, A]
    if len(labels) > max_units:  # keep whole people so within-person pairs survive the sample
        rng = np.random.default_rng(seed)
        keep_people = rng.permutation(len(people))[: max(2, max_units * len(people) // len(labels))]
        keep = np.isin(labels, keep_people)
        labels, vectors = labels[keep], vectors[keep]
    sim = _cosine_matrix(vectors)  # [U, U]
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = float(sim[same & off_diagonal].mean())
    between = float(sim[~same].mean())
    masked = np.where(off_diagonal, sim, -np.inf)
    nearest = masked.argmax(axis=1)
    hits = float((labels[nearest] == labels).mean())
    sizes = np.bincount(labels)[labels]
    chance = float(((sizes - 1) / (len(labels) - 1)).mean())
    return Personality(within, between, hits, chance, unit, len(np.unique(labels)))


def profile_consistency(log: EventLog, profiles: Mapping[str, Profile]) -> dict[str, float]:
    """Share of a person's events that are among their own profile's preferred actions, against the share
    that falls in another (randomly paired) profile's preferred actions. Own > other means the generated
    behaviour follows the profile, not only the population."""
    people = person_sequences(log)
    usable = [p for p in people if p in profiles and profiles[p].preferred_actions]
    if len(usable) < 2:
        raise EvaluationError("Profile consistency needs at least two people with profiles that name preferred actions",
                              hint="Pass the run's profiles (the log's profile_id column must match profile ids).")
    own, other = [], []
    for i, person in enumerate(usable):
        events = [a for s in people[person] for a in s]
        mine = set(profiles[person].preferred_actions)
        theirs = set(profiles[usable[(i + 1) % len(usable)]].preferred_actions)
        own.append(np.mean([a in mine for a in events]))
        other.append(np.mean([a in theirs for a in events]))
    return {"own_profile_share": float(np.mean(own)), "other_profile_share": float(np.mean(other)),
            "profiles_evaluated": float(len(usable))}


def diversity_table(real: EventLog, synthetic: EventLog, seed: int = 0) -> list[MetricRow]:
    """Population diversity and personality of the synthetic log beside the same figures on real data.
    Population figures use samples of the same number of sequences (distinct-n and coverage grow with
    sample size); personality uses whole logs, so that no person's sequences are split up."""
    samples = matched_samples(real, synthetic, seed)
    real_values, synth_values = population_diversity(samples.real), population_diversity(samples.synthetic)
    rows = [MetricRow(name, value, real_values.get(name), "close to reference", _DIVERSITY_TEXT[name.rstrip("0123456789")])
            for name, value in synth_values.items()]
    real_p, synth_p = personality(real), personality(synthetic)
    rows += [
        MetricRow("within_person_similarity", synth_p.within, real_p.within, "higher",
                  f"mean cosine similarity of two {synth_p.unit} of the same person (reference unit: {real_p.unit})"),
        MetricRow("between_person_similarity", synth_p.between, real_p.between, "lower",
                  "mean cosine similarity of sequences of different people"),
        MetricRow("personality_gap", synth_p.gap, real_p.gap, "higher", "within minus between similarity"),
        MetricRow("nearest_is_same_person", synth_p.nearest_same_person, real_p.nearest_same_person, "higher",
                  f"share of sequences whose nearest neighbour is the same person's (chance {synth_p.chance:.3f})"),
    ]
    return rows


_DIVERSITY_TEXT = {
    "action_entropy_bits": "entropy of the action distribution (bits)",
    "action_entropy_normalised": "action entropy divided by log2(vocabulary size)",
    "action_coverage": "share of the vocabulary that occurs",
    "distinct_": "distinct n-grams divided by all n-grams",
    "person_mix_spread_jsd": "mean JSD (bits) of each person's action mix from the population mix",
}

