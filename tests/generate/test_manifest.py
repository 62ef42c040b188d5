"""The run manifest record: written and read back whole, older runs read with the values they had, a damaged
or foreign manifest refused with what to do."""

from __future__ import annotations

import json

import pytest

from behaviorlab.errors import DataError
from behaviorlab.generate.manifest import MANIFEST_FILE, RunManifest


def test_manifest_round_trips_through_its_file(tiny_run) -> None:
    manifest = RunManifest.read(tiny_run.run)
    text = (tiny_run.run / MANIFEST_FILE).read_text()
    assert json.loads(text)["data"]["schema"]["name"] == "smartthings"  # the JSON key, not the field's name
    manifest.write(tiny_run.run)
    assert RunManifest.read(tiny_run.run) == manifest and (tiny_run.run / MANIFEST_FILE).read_text() == text


def test_a_run_made_before_later_keys_reads_with_the_values_it_had(tiny_run) -> None:
    path = tiny_run.run / MANIFEST_FILE
    older = json.loads(path.read_text())
    for key in ("profiles", "sequences_per_profile", "pending_sequences", "sequences_missing"):
        del older[key]
    del older["data"]["grounding_digest"], older["tokens"]["prefix_cache_hit_rate"]
    del older["time"]["accepted_sequences_per_minute"], older["config"]["grounding"]
    path.write_text(json.dumps(older))
    manifest = RunManifest.read(tiny_run.run)
    assert manifest.sequences_per_profile == 1 and manifest.profiles is None and manifest.grounded
    assert manifest.data.grounding_digest is None and manifest.tokens.prefix_cache_hit_rate is None


def test_a_damaged_or_foreign_manifest_is_a_data_error(tiny_run) -> None:
    path = tiny_run.run / MANIFEST_FILE
    whole = json.loads(path.read_text())
    path.write_text(json.dumps(whole | {"attempts": {"attempts": "many"}, "new_key": 1}))
    with pytest.raises(DataError, match="not a generation run manifest") as refused:
        RunManifest.read(tiny_run.run)
    assert {p.message.split(":")[0] for p in refused.value.problems} >= {"attempts.attempts", "new_key"}
    assert "Re-run the generation" in refused.value.hint
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        RunManifest.read(tiny_run.run)
