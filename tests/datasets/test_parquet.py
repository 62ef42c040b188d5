import polars as pl
import pytest

from behaviorlab.datasets import ColumnMapping, load, read_event_log, write_event_log
from behaviorlab.datasets.mapping import event_log_from_frame
from behaviorlab.errors import DataError


def sample_log():
    frame = pl.DataFrame({"uid": ["u", "u", "v"], "ts": ["2024-01-01T00:00:00", "2024-01-02T00:00:00", "2024-01-01T05:00:00"],
                          "item": ["a", "b", "a"], "rating": ["4", "5", "1"], "title": ["Alpha", "Beta", "Alpha"]})
    mapping = ColumnMapping(user="uid", time="ts", action="item", extras={"rating": "float"}, descriptions="title",
                            name="demo", domain="items")
    return event_log_from_frame(frame, mapping, source="memory")


def test_round_trip_is_lossless(tmp_path):
    log = sample_log()
    path = write_event_log(log, tmp_path / "out" / "events.parquet")
    back = load(path)
    assert back.frame.equals(log.frame) and back.schema == log.schema and back.vocabulary == log.vocabulary
    assert read_event_log(path).vocabulary.describe("b") == "Beta"
    assert [p.name for p in path.parent.iterdir()] == ["events.parquet"]  # no temporary file left


def test_plain_parquet_needs_a_mapping(tmp_path):
    path = tmp_path / "plain.parquet"
    pl.DataFrame({"who": ["u"], "when": [1_700_000_000], "what": ["x"]}).write_parquet(path)
    with pytest.raises(DataError, match="columns are missing"):
        load(path)
    log = load(path, mapping=ColumnMapping(user="who", time="when", action="what"))
    assert log.time_column == "timestamp" and log.n_events == 1
    with pytest.raises(DataError, match="no behaviorlab schema"):
        read_event_log(path)


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    before = path.read_bytes()
    import pyarrow.parquet as pq

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError):
        write_event_log(sample_log(), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["events.parquet"]


def test_float_ids_from_pandas_become_integers_and_nan_ids_are_listed(tmp_path):
    path = tmp_path / "floats.parquet"
    pl.DataFrame({"user_id": [1.0, 2.0, float("nan")], "timestamp": [1, 2, 3], "action": ["a", "b", "c"]}).write_parquet(path)
    with pytest.raises(DataError) as info:
        load(path, mapping=ColumnMapping(time_format="position"))
    assert [(p.row, p.column) for p in info.value.problems] == [(3, "user_id")]
    pl.DataFrame({"user_id": [1.0, 2.5], "timestamp": [1, 2], "action": ["a", "b"]}).write_parquet(path)
    assert load(path, mapping=ColumnMapping(time_format="position")).users() == ["1", "2.5"]


def test_a_file_that_would_not_read_back_never_replaces_the_target(tmp_path, monkeypatch):
    """E.g. a footer past the readers' size limit (a huge value in the statistics): checked before the rename."""
    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    before = path.read_bytes()
    import pyarrow.parquet as pq

    real_read_metadata = pq.read_metadata

    def footer_too_large(where, *args, **kwargs):
        if str(where).endswith(".tmp"):
            raise OSError("Couldn't deserialize thrift: TProtocolException: Exceeded size limit")
        return real_read_metadata(where, *args, **kwargs)

    monkeypatch.setattr(pq, "read_metadata", footer_too_large)
    with pytest.raises(DataError, match="was not written: the Parquet file would not read back") as info:
        write_event_log(sample_log(), path)
    assert "Exceeded size limit" in info.value.problems[0].message
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["events.parquet"]
