import hashlib
from pathlib import Path

import pytest

from behaviorlab.datasets import load
from behaviorlab.datasets.catalog import BUILTIN, CATALOG_ENV, catalog, get_dataset
from behaviorlab.datasets.registry import format_names
from behaviorlab.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"

ENTRY = """
[[dataset]]
name = "lab-log"
description = "our log"
format = "csv"
path = "log.csv"
license = "internal"
citation = "-"
[[dataset.files]]
url = "https://example.org/log.csv"
name = "log.csv"
"""


def test_builtin_entries_name_a_reader_and_record_sizes_with_every_digest():
    assert {e.name for e in BUILTIN} >= {"ml-100k", "amazon-beauty", "smartthings-fr", "foursquare-nyc", "foursquare-tky",
                                         "kasteren"}
    for entry in BUILTIN:
        assert entry.format in format_names() and entry.license and entry.citation
        for file in entry.files:
            assert file.sha256 is None or (file.size is not None and file.digest_source)
    assert get_dataset("ml-100k", catalog()).verified and not get_dataset("smartthings-fr", catalog()).verified


@pytest.mark.skipif(not (SHARED / "amazon-beauty").is_dir(), reason="the shared copy of Amazon Beauty is absent")
def test_recorded_digests_match_the_shared_copies_of_the_published_files():
    for file in get_dataset("amazon-beauty", catalog()).files:
        data = (SHARED / "amazon-beauty" / file.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.sha256)


@pytest.mark.skipif(not (SHARED / "kasteren").is_dir(), reason="the shared copy of the Kasteren houses is absent")
def test_the_kasteren_entry_names_the_files_its_loader_reads(tmp_path):
    """The entry's files, put where fetch puts them, load as the shared copy does (all three houses)."""
    entry = get_dataset("kasteren", catalog())
    for file in entry.files:
        (tmp_path / file.name).write_bytes((SHARED / "kasteren" / file.name).read_bytes())
    fetched = load(tmp_path / entry.path, format=entry.format)
    assert fetched.frame.equals(load(SHARED / "kasteren").frame) and fetched.users() == ["houseA", "houseB", "houseC"]
    assert sorted(p.name for p in (SHARED / "kasteren").iterdir()) == sorted(f.name for f in entry.files)


def test_a_catalog_file_adds_entries_and_is_checked_like_a_config(tmp_path, monkeypatch):
    extra = tmp_path / "datasets.toml"
    extra.write_text(ENTRY)
    monkeypatch.setenv(CATALOG_ENV, str(extra))
    assert catalog()["lab-log"].files[0].url == "https://example.org/log.csv"
    extra.write_text(ENTRY.replace('name = "lab-log"', 'name = "ml-100k"'))
    with pytest.raises(ConfigError, match="ml-100k"):
        catalog()
    extra.write_text(ENTRY.replace('format = "csv"', 'format = "xls"\nmirror = 1').replace(
        'name = "log.csv"', 'name = "log.csv"\nsha256 = "abc"').replace('path = "log.csv"', 'path = "../log.csv"'))
    with pytest.raises(ConfigError) as error:
        catalog()
    message = str(error.value)
    assert all(word in message for word in ("xls", "mirror", "64 lowercase hex", "relative path"))


def test_an_unknown_name_suggests_the_closest():
    with pytest.raises(DataError, match="did you mean 'ml-100k'"):
        get_dataset("ml100k", catalog())
