"""RunStore.claim: which stores a run may resume, and what it says about the others."""

from __future__ import annotations

import sqlite3

import pytest

from behaviorlab.errors import GenerationError
from behaviorlab.generate.store import FINGERPRINT, FORMAT, STORE_FORMAT, RunStore


def _store_with_meta(path, rows: list[tuple[str, str]]) -> RunStore:
    store = RunStore(path)
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO meta VALUES (?, ?)", rows)
    return store


def _meta(path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())


def test_a_new_store_records_its_fingerprint_and_format(tmp_path) -> None:
    store = RunStore(tmp_path / "run.sqlite")
    store.claim("abc")
    store.claim("abc")  # the same run resumes
    store.close()
    assert _meta(tmp_path / "run.sqlite") == {FINGERPRINT: "abc", FORMAT: str(STORE_FORMAT)}


def test_other_settings_in_the_same_format(tmp_path) -> None:
    store = _store_with_meta(tmp_path / "run.sqlite", [(FINGERPRINT, "abc"), (FORMAT, str(STORE_FORMAT))])
    with pytest.raises(GenerationError, match="other settings or data") as caught:
        store.claim("xyz")
    assert "earlier behaviorlab" not in str(caught.value) and "same command" in caught.value.hint


def test_a_store_from_an_earlier_format_names_it(tmp_path) -> None:
    store = _store_with_meta(tmp_path / "run.sqlite", [(FINGERPRINT, "abc"), (FORMAT, "1")])
    with pytest.raises(GenerationError, match=f"store format 1 by an earlier behaviorlab .*format {STORE_FORMAT}"):
        store.claim("xyz")


def test_an_unrecorded_format_resumes_when_the_fingerprint_matches(tmp_path) -> None:
    """Format-2 stores made before the format was recorded resume and get it recorded; others are refused."""
    store = _store_with_meta(tmp_path / "run.sqlite", [(FINGERPRINT, "abc")])
    with pytest.raises(GenerationError, match="an older store format") as caught:
        store.claim("xyz")
    assert "new --out" in caught.value.hint
    store.claim("abc")
    store.close()
    assert _meta(tmp_path / "run.sqlite")[FORMAT] == str(STORE_FORMAT)
