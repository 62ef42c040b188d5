"""Checks against the real datasets beside the repository; skipped where they are absent (fresh clones)."""

from pathlib import Path

import polars as pl
import pytest

from behaviorlab.datasets import load

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real datasets not found at {SHARED} (only present in the workplace)")


@needs_shared
def test_smartthings_fr_counts_and_both_layouts_agree():
    csv = load(SHARED / "smartthings-fr")
    original = load(SHARED / "smartthings-fr" / "original")
    train = csv.filter(pl.col("split") == "train")
    assert (train.n_users, train.n_events) == (3095, 30950)
    assert csv.frame.sort("user_id", "position").equals(original.frame.sort("user_id", "position"))


@needs_shared
def test_movielens_100k_counts():
    log = load(SHARED / "movielens-100k")
    assert (log.n_users, len(log.vocabulary), log.n_events) == (943, 1682, 100_000)
    assert log.vocabulary.describe("1") == "Toy Story (1995) — Animation, Children's, Comedy"


@needs_shared
def test_foursquare_and_kasteren_load():
    checkins = load(SHARED / "foursquare-nyc")
    assert checkins.n_users == 962 and checkins.n_events > 20_000
    houses = load(SHARED / "kasteren")
    assert houses.frame.group_by("user_id").len().sort("user_id").get_column("len").to_list() == [1229, 19075, 22700]
