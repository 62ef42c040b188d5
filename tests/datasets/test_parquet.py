import os

import polars as pl
import pytest

from behaviorlab.datasets import ColumnMapping, load, read_event_log, scan, write_event_log
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

    monkeypatch.setattr(pq.ParquetWriter, "write_table", broken)
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


def _footer_metadata(path):
    import pyarrow.parquet as pq

    return pq.read_metadata(path).metadata


def test_a_file_written_here_records_its_checked_rows_and_reloads_without_the_row_pass(tmp_path, monkeypatch):
    import json

    import pyarrow.parquet as pq

    from behaviorlab import schema as schema_module
    from behaviorlab.datasets.parquet import CHECKED_KEY

    log = sample_log()
    for written in (write_event_log(log, tmp_path / "eager.parquet"), write_event_log(log.lazy(), tmp_path / "lazy.parquet")):
        footer = pq.read_metadata(written)
        record = json.loads(footer.metadata[CHECKED_KEY])
        assert record["rows"] == log.n_events and record["data_bytes"] == written.stat().st_size - footer.serialized_size - 8
        with monkeypatch.context() as patched:
            patched.setattr(schema_module, "_validated", lambda *args: pytest.fail("an unchanged file was checked row by row"))
            back = load(written)
        assert back.frame.equals(log.frame) and (back.schema, back.vocabulary) == (log.schema, log.vocabulary)


def _user_encodings(path):
    import pyarrow.parquet as pq

    footer = pq.read_metadata(path)
    user = footer.schema.names.index("user_id")
    return {e for g in range(footer.num_row_groups) for e in footer.row_group(g).column(user).encodings}


def test_user_ids_grouped_in_runs_are_dictionary_encoded_and_read_back_as_text(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from behaviorlab import schema as schema_module

    users = [f"user{i // 3}" for i in range(60)]  # runs of 3 events
    frame = pl.DataFrame({"uid": users, "ts": [1_700_000_000 + i for i in range(60)], "item": [f"a{i % 4}" for i in range(60)]})
    grouped = event_log_from_frame(frame, ColumnMapping(user="uid", time="ts", action="item"), source="memory")
    shuffled = grouped.with_frame(grouped.frame.sort("timestamp", descending=True).sort("action", maintain_order=True))
    assert shuffled.frame.get_column("user_id").rle_id().max() + 1 > 30  # runs shorter than 2 on average
    for log, name in ((grouped, "eager"), (grouped.lazy(), "lazy")):
        path = write_event_log(log, tmp_path / f"{name}.parquet")
        assert "RLE_DICTIONARY" in _user_encodings(path)
        assert pl.read_parquet(path).schema["user_id"] == pl.String
        assert pq.read_table(path).schema.field("user_id").type == pa.large_string()
        with monkeypatch.context() as patched:
            patched.setattr(schema_module, "_validated", lambda *args: pytest.fail("an unchanged file was checked row by row"))
            back = load(path)
        assert back.frame.equals(grouped.frame) and back.frame.schema["user_id"] == pl.String
    path = write_event_log(shuffled, tmp_path / "shuffled.parquet")
    assert "RLE_DICTIONARY" not in _user_encodings(path) and load(path).frame.equals(shuffled.frame)


def test_a_changed_file_is_checked_row_by_row_with_the_errors_of_any_load(tmp_path):
    """A tool that rewrites the rows and keeps the footer's key-value metadata (as pyarrow does) keeps our checked
    record too: its digest no longer matches, so every row is checked again, by a load and by a lazy scan."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from behaviorlab.datasets.parquet import rows_unchanged

    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    metadata = _footer_metadata(path)
    table = pq.read_table(path)
    for action, message in (("z", "1 actions in the log are missing from its vocabulary"), ("", "does not match")):
        changed = table.set_column(2, "action", pa.array(table.column("action").to_pylist()[:-1] + [action]))
        pq.write_table(changed.replace_schema_metadata(metadata), path)
        assert _footer_metadata(path)[b"behaviorlab.checked"] == metadata[b"behaviorlab.checked"]
        assert not rows_unchanged(path, pq.read_metadata(path))
        with pytest.raises(DataError, match=message):
            load(path)
        with pytest.raises(DataError, match=message):
            scan(path)
    assert scan(write_event_log(sample_log(), path)).frame.collect().equals(sample_log().frame)


def test_one_changed_byte_in_the_data_pages_is_seen(tmp_path):
    import pyarrow.parquet as pq

    from behaviorlab.datasets.parquet import rows_unchanged

    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    assert rows_unchanged(path, pq.read_metadata(path))
    data = bytearray(path.read_bytes())
    data[10] ^= 1  # inside the first column chunk
    path.write_bytes(bytes(data))
    assert not rows_unchanged(path, pq.read_metadata(path))


def test_the_digest_covers_every_data_byte_across_its_read_chunks(tmp_path, monkeypatch):
    """The data pages are digested a chunk at a time: with chunks of 7 bytes (so that many chunk boundaries fall
    inside the pages, and the last chunk is a partial one), a change in any single byte is still seen."""
    import pyarrow.parquet as pq

    from behaviorlab.datasets import parquet

    monkeypatch.setattr(parquet, "DIGEST_CHUNK", 7)
    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    footer = pq.read_metadata(path)
    assert parquet.rows_unchanged(path, footer)
    data = path.read_bytes()
    data_bytes = len(data) - footer.serialized_size - 8
    assert data_bytes % 7 and data_bytes > 7 * 10
    for position in range(data_bytes):
        changed = bytearray(data)
        changed[position] ^= 0x80
        path.write_bytes(bytes(changed))
        assert not parquet.rows_unchanged(path, footer), position


def test_a_file_cut_short_after_its_size_was_read_is_not_unchanged(tmp_path):
    from behaviorlab.datasets import parquet

    path = write_event_log(sample_log(), tmp_path / "events.parquet")
    size = path.stat().st_size
    assert parquet._data_crc(path, size) is not None and parquet._data_crc(path, size + 1) is None


def test_files_of_the_older_format_still_load_and_are_checked_row_by_row(tmp_path):
    """Before the checked record: schema and vocabulary only, written by pyarrow as one table (zstd)."""
    import pyarrow.parquet as pq

    from behaviorlab.datasets.parquet import SCHEMA_KEY, VOCABULARY_KEY

    log = sample_log()
    old = {SCHEMA_KEY: log.schema.to_json().encode(), VOCABULARY_KEY: log.vocabulary.to_json().encode()}
    path = tmp_path / "old.parquet"
    pq.write_table(log.frame.to_arrow().replace_schema_metadata(old), path, compression="zstd")
    back = load(path)
    assert back.frame.equals(log.frame) and (back.schema, back.vocabulary) == (log.schema, log.vocabulary)
    wrong = log.frame.with_columns(pl.Series("action", ["a", "b", "q"]))
    pq.write_table(wrong.to_arrow().replace_schema_metadata(old), path, compression="zstd")
    with pytest.raises(DataError, match="missing from its vocabulary") as info:
        load(path)
    assert [p.message for p in info.value.problems] == ["unknown action 'q'"]


def test_a_file_replaced_while_it_is_read_is_checked_row_by_row(tmp_path, monkeypatch):
    """The rows and the digest come from two opens. If a good file replaces a changed one between them, the
    digest matches the good file's footer but the rows are the changed file's: they must be checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from behaviorlab.datasets import parquet

    good = write_event_log(sample_log(), tmp_path / "good.parquet")
    good_footer, spare = pq.read_metadata(good), tmp_path / "spare.parquet"
    spare.write_bytes(good.read_bytes())
    path, table = tmp_path / "events.parquet", pq.read_table(good)
    changed = table.set_column(2, "action", pa.array(table.column("action").to_pylist()[:-1] + ["z"]))
    pq.write_table(changed.replace_schema_metadata(_footer_metadata(good)), path)
    read_rows = parquet.pl.read_parquet

    def read_then_replace(source, *args, **kwargs):
        frame = read_rows(source, *args, **kwargs)
        os.replace(spare, source)  # the good file lands after the changed rows were read
        return frame

    monkeypatch.setattr(parquet.pl, "read_parquet", read_then_replace)
    with pytest.raises(DataError, match="missing from its vocabulary"):
        parquet.read_event_log(path, good_footer)
