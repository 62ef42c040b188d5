"""Small EventLog builders shared by the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl
import pytest

from behaviorlab.schema import EventLog, Schema, Vocabulary

LogBuilder = Callable[..., EventLog]


@pytest.fixture
def sequences_log() -> LogBuilder:
    """sequences_log([[a, b, ...], ...], vocabulary=None, hour_bins=None, persons=None, prefix="u"):
    one user per sequence, positions as time, optional per-event hour bins and per-sequence profile ids."""

    def build(sequences: Sequence[Sequence[str]], vocabulary: Sequence[str] | None = None,
              hour_bins: Sequence[Sequence[str]] | None = None, persons: Sequence[str] | None = None,
              prefix: str = "u") -> EventLog:
        rows: dict[str, list] = {"user_id": [], "position": [], "action": []}
        extras: dict[str, str] = {}
        if hour_bins is not None:
            rows["hour_bin"] = []
            extras["hour_bin"] = "str"
        if persons is not None:
            rows["profile_id"] = []
            extras["profile_id"] = "str"
        for i, seq in enumerate(sequences):
            for j, action in enumerate(seq):
                rows["user_id"].append(f"{prefix}{i}")
                rows["position"].append(j)
                rows["action"].append(action)
                if hour_bins is not None:
                    rows["hour_bin"].append(hour_bins[i][j])
                if persons is not None:
                    rows["profile_id"].append(persons[i])
        schema = Schema(name="fixture", time="position", extras=extras)
        frame = pl.DataFrame(rows, schema={"user_id": pl.String, "position": pl.Int64, "action": pl.String}
                             | {c: pl.String for c in extras})
        vocab = Vocabulary.from_actions(vocabulary) if vocabulary is not None else None
        return EventLog(frame, schema, vocab)

    return build
