"""Priors estimated from the real log: per-user action mix, active time slots, strata and neighbours.

Users are described by their action mix (square-root counts, L2-normalised, so one very frequent
action does not swamp the rest); strata are k-means clusters of these vectors and neighbours are
the most cosine-similar users.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from behaviorlab.errors import DataError
from behaviorlab.profiles.episodes import N_BINS, Episode, episodes_from_log
from behaviorlab.profiles.privacy import laplace_counts
from behaviorlab.schema import EventLog

WEEK_SLOTS = 7 * N_BINS


@dataclass(frozen=True)
class StratumStats:
    """Count tables of one stratum (noisy when released with differential privacy)."""

    action_counts: np.ndarray  # [V] events per action
    transition_counts: np.ndarray  # [V, V] a -> b within an episode
    slot_counts: np.ndarray  # [56] events per weekday x hour bin


@dataclass(frozen=True)
class RealPriors:
    actions: tuple[str, ...]  # column order of every [V] table
    users: tuple[str, ...]
    episodes: dict[str, tuple[Episode, ...]]  # user -> episodes in time order
    mix: np.ndarray  # [U, V] action mix vectors, L2-normalised
    counts: np.ndarray  # [U, V] raw action counts
    slots: np.ndarray  # [U, 56] events per week slot (zeros for position-only logs)
    strata: np.ndarray  # [U] stratum index of each user
    stratum_names: tuple[str, ...]
    episode_length: int

    def stratum_members(self, stratum: int) -> np.ndarray:
        return np.flatnonzero(self.strata == stratum)

    def typicality(self, members: np.ndarray) -> np.ndarray:
        """Cosine similarity of each member to its group's mean mix: 1 = the group's typical user."""
        centre = self.mix[members].mean(axis=0)
        return self.mix[members] @ (centre / max(np.linalg.norm(centre), 1e-12))

    def neighbours(self, user_index: int, k: int) -> list[int]:
        """The user itself, then the k-1 most similar users (ties broken by index, so it is deterministic)."""
        similarity = self.mix @ self.mix[user_index]
        similarity[user_index] = np.inf
        order = np.lexsort((np.arange(len(similarity)), -similarity))
        return [int(i) for i in order[:k]]

    def stratum_stats(self, stratum: int, epsilon: float | None, rng: np.random.Generator) -> StratumStats:
        """Count tables of one stratum; with epsilon, each table is an epsilon-DP Laplace release.

        Each user's contribution is bounded by using only their first episode (at most
        `episode_length` events), which is the sensitivity of every table.
        """
        members = [self.users[member] for member in self.stratum_members(stratum)]
        exact = self.count_tables(members, first_episode_only=epsilon is not None)
        bound = float(self.episode_length)
        return StratumStats(laplace_counts(exact.action_counts, epsilon, bound, rng),
                            laplace_counts(exact.transition_counts, epsilon, bound, rng),
                            laplace_counts(exact.slot_counts, epsilon, bound, rng))

    def count_tables(self, users: Iterable[str], *, first_episode_only: bool = False) -> StratumStats:
        """Exact action, transition and week-slot counts over the given users' episodes."""
        index = {a: i for i, a in enumerate(self.actions)}
        v = len(self.actions)
        actions, transitions, slots = np.zeros(v), np.zeros((v, v)), np.zeros(WEEK_SLOTS)
        for user in users:
            user_episodes = self.episodes[user]
            for episode in user_episodes[:1] if first_episode_only else user_episodes:
                columns = [index[a] for a in episode.actions]
                np.add.at(actions, columns, 1.0)
                np.add.at(transitions, (columns[:-1], columns[1:]), 1.0)
                for event in episode.events:
                    if event.week_slot is not None:
                        slots[event.week_slot] += 1.0
        return StratumStats(actions, transitions, slots)


def _kmeans_strata(mix: np.ndarray, n_strata: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = max(1, min(n_strata, len(np.unique(mix, axis=0))))
    if k == 1:
        return np.zeros(len(mix), dtype=int)
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(mix)
    # Renumber strata by size (largest first, ties by first member) so names are stable and readable.
    sizes = Counter(labels.tolist())
    order = sorted(sizes, key=lambda c: (-sizes[c], int(np.flatnonzero(labels == c)[0])))
    renumber = {old: new for new, old in enumerate(order)}
    return np.asarray([renumber[c] for c in labels.tolist()], dtype=int)


def estimate_real_priors(log: EventLog, episode_length: int, n_strata: int = 8, seed: int = 0) -> RealPriors:
    """Per-user statistics of `log` and a stratification of its users."""
    episodes = episodes_from_log(log, episode_length)
    if not episodes:
        raise DataError("The log has no user with at least two events",
                        hint="Generation needs real sequences to learn from; check the data.")
    actions = tuple(log.vocabulary.actions)
    index = {a: i for i, a in enumerate(actions)}
    by_user: dict[str, list[Episode]] = {}
    for episode in episodes:
        by_user.setdefault(episode.user, []).append(episode)
    users = tuple(by_user)
    counts = np.zeros((len(users), len(actions)))
    slots = np.zeros((len(users), WEEK_SLOTS))
    for u, user in enumerate(users):
        for episode in by_user[user]:
            for event in episode.events:
                counts[u, index[event.action]] += 1.0
                if event.week_slot is not None:
                    slots[u, event.week_slot] += 1.0
    mix = np.sqrt(counts)
    mix /= np.maximum(np.linalg.norm(mix, axis=1, keepdims=True), 1e-12)
    strata = _kmeans_strata(mix, n_strata, seed)
    names = []
    for s in range(int(strata.max()) + 1):
        top = np.argsort(-counts[strata == s].sum(axis=0), kind="stable")[:2]
        names.append(f"S{s}: mostly {' / '.join(actions[i] for i in top)}")
    return RealPriors(actions, users, {u: tuple(e) for u, e in by_user.items()}, mix, counts, slots,
                      strata, tuple(names), episode_length)
