"""Synthetic Markov-chain logs with known transitions, shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from behaviorlab.schema import EventLog, Schema, Vocabulary

N_ACTIONS = 12


def chain_matrix() -> np.ndarray:
    """[V, V] transition matrix: each action has a dominant successor (~0.7) and a second one (~0.25)."""
    matrix = np.full((N_ACTIONS, N_ACTIONS), 0.05 / (N_ACTIONS - 2))
    for a in range(N_ACTIONS):
        matrix[a, (a + 1) % N_ACTIONS] = 0.7
        matrix[a, (a * 5 + 3) % N_ACTIONS] += 0.25
    return matrix / matrix.sum(axis=1, keepdims=True)


def chain_vocabulary() -> Vocabulary:
    return Vocabulary(tuple(f"a{i:02d}" for i in range(N_ACTIONS)), {f"a{i:02d}": f"action number {i}" for i in range(N_ACTIONS)})


@pytest.fixture(scope="session")
def chain_log() -> Callable[..., EventLog]:
    """chain_log(n_users=120, length=25, seed=0, context=False) -> EventLog with `position` time.

    With context=True each event gets a `phase` extra ("x" or "y", random) and the chain is
    deterministic given the phase of the event being predicted: x -> a+1, y -> a+5.
    """

    def build(n_users: int = 120, length: int = 25, seed: int = 0, context: bool = False) -> EventLog:
        rng = np.random.default_rng(seed)
        matrix = chain_matrix()
        rows: dict[str, list] = {"user_id": [], "position": [], "action": []}
        if context:
            rows["phase"] = []
        for u in range(n_users):
            action = int(rng.integers(N_ACTIONS))
            for t in range(length):
                phase = "x" if rng.random() < 0.5 else "y"
                if t > 0:
                    if context:
                        action = (action + (1 if phase == "x" else 5)) % N_ACTIONS
                    else:
                        action = int(rng.choice(N_ACTIONS, p=matrix[action]))
                rows["user_id"].append(f"u{u:03d}")
                rows["position"].append(t)
                rows["action"].append(f"a{action:02d}")
                if context:
                    rows["phase"].append(phase)
        schema = Schema(name="chain", time="position", extras={"phase": "str"} if context else {})
        frame = pl.DataFrame(rows, schema={"user_id": pl.String, "position": pl.Int64, "action": pl.String}
                             | ({"phase": pl.String} if context else {}))
        return EventLog(frame, schema, chain_vocabulary())

    return build

