"""Representative, non-redundant selection of real sequences (the selection half of SPPC).

Each episode becomes a TF-IDF vector over its actions and its action-to-action transitions ("a>b"),
L2-normalised. Selection is greedy: the next episode is the one adding the most not-yet-covered
feature weight (information gain), plus a bonus for being close to the pool's centre
(representativeness); an episode whose cosine similarity to an already chosen one exceeds
`max_similarity` is redundant and skipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from behaviorlab.profiles.episodes import Episode

TRANSITION = ">"


def episode_features(episode: Episode) -> list[str]:
    actions = episode.actions
    return [*actions, *(f"{a}{TRANSITION}{b}" for a, b in itertools.pairwise(actions))]


def episode_vectors(episodes: Sequence[Episode]) -> np.ndarray:
    """[N, F] TF-IDF vectors of actions and transitions, rows L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=episode_features, lowercase=False, norm="l2", sublinear_tf=True)
    return vectorizer.fit_transform(list(episodes)).toarray()


@dataclass(frozen=True)
class Selection:
    chosen: tuple[int, ...]  # indices into the candidates, in the order they were picked
    redundant: int  # candidates skipped as near-duplicates of a chosen one
    feature_coverage: float  # share of the candidates' features that the chosen ones contain


def select_representative(episodes: Sequence[Episode], k: int, *, max_similarity: float = 0.9,
                          representativeness: float = 0.5) -> Selection:
    """Pick up to `k` episodes that together cover the most of the candidates' behavior."""
    if not episodes or k <= 0:
        return Selection((), 0, 0.0)
    vectors = episode_vectors(episodes)  # [N, F]
    centre = vectors.mean(axis=0)
    closeness = vectors @ (centre / max(np.linalg.norm(centre), 1e-12))  # [N]
    present = vectors > 0  # [N, F]
    covered = np.zeros(vectors.shape[1], dtype=bool)
    max_seen = np.full(len(episodes), -np.inf)  # highest similarity to any chosen episode
    chosen: list[int] = []
    available = np.ones(len(episodes), dtype=bool)
    while len(chosen) < k:
        eligible = available & (max_seen <= max_similarity)
        if not eligible.any():
            break
        gain = (vectors * ~covered).sum(axis=1)  # feature weight not yet covered
        score = np.where(eligible, gain + representativeness * closeness, -np.inf)
        best = int(np.argmax(score))  # argmax takes the lowest index on ties: deterministic
        chosen.append(best)
        available[best] = False
        covered |= present[best]
        max_seen = np.maximum(max_seen, vectors @ vectors[best])
    redundant = int((available & (max_seen > max_similarity)).sum())
    coverage = float(covered.sum() / max(present.any(axis=0).sum(), 1))
    return Selection(tuple(chosen), redundant, coverage)
