import pytest

from behaviorlab.datasets import FORMATS, ColumnMapping, detect_format, format_names, load
from behaviorlab.errors import ConfigError, DataError


def test_format_names_are_unique_and_generic_last():
    names = format_names()
    assert len(names) == len(set(names)) and names[-3:] == ["parquet", "jsonl", "csv"]
    assert all(f.uses_mapping == (f.name in ("parquet", "jsonl", "csv")) for f in FORMATS)


def test_wrong_guess_says_which_format_and_how_to_force(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text("hour,category,share\n1,sleep,0.9\n")
    assert detect_format(path).name == "csv"
    with pytest.raises(DataError) as info:
        load(path)
    assert "detected as 'csv'" in info.value.hint and "--format" in info.value.hint


def test_unrecognised_path_lists_formats(tmp_path):
    (tmp_path / "notes.md").write_text("hello")
    with pytest.raises(DataError) as info:
        load(tmp_path)
    assert "smartthings-pickle" in info.value.hint and "--format" in info.value.hint
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "missing.csv")


def test_forcing_formats(tmp_path):
    path = tmp_path / "data.log"
    path.write_text("user_id,timestamp,action\nu,2024-01-01,a\n")
    with pytest.raises(DataError):
        load(path)
    assert load(path, format="csv").n_events == 1
    with pytest.raises(ConfigError, match="Unknown format"):
        load(path, format="xlsx")
    with pytest.raises(ConfigError, match="takes no column mapping"):
        load(path, format="kasteren", mapping=ColumnMapping())
