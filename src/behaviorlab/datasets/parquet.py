"""EventLog <-> Parquet, with the schema and vocabulary in the file's key-value metadata.

A file written here reads back as the same EventLog (columns, types, schema, vocabulary text). A folder
of Parquet files (a plain folder of *.parquet, or hive-style key=value/ sub-folders) reads as one table.

A file written here also records that its rows passed the row checks of an EventLog, with a digest of what
those checks depend on (its data pages, schema and vocabulary). While the digest matches, a load skips the
passes over the rows (the columns, types, row count and null counts are still checked, at no cost); a file
changed since, or written by another tool or an older behaviorlab, is checked row by row.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from behaviorlab.atomic import atomic_path
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import ACTION, USER, EventLog, LazyEventLog, Schema, Vocabulary

SCHEMA_KEY = b"behaviorlab.schema"
VOCABULARY_KEY = b"behaviorlab.vocabulary"
CHECKED_KEY = b"behaviorlab.checked"  # {"rows", "data_bytes", "crc32"}: see _checked_record
# Rows per row group, and per batch of a streamed log: pyarrow's default; 10 row groups per 10M events.
ROW_GROUP_ROWS = 1 << 20
# LZ4: measured to read ~1.5x faster than zstd on 10M events (the load is what a converted file is for),
# for ~35% more bytes.
COMPRESSION = "lz4"
# User ids are dictionary-encoded when the first batch holds them in runs of at least USER_RUNS events on average (a
# log grouped by user). Bare pl.read_parquet of 10M events, 1M users, dictionary against plain: 0.24 s against 0.32 s
# at runs of 10, 0.28 s against 0.34 s at runs of 3.5, 0.32 s against 0.33 s at runs of 1.9, but 0.39 s against
# 0.31 s with the users shuffled (runs of 1: a gather from a dictionary of ~630K ids per row group).
USER_RUNS = 2
# The dictionary page limit when user ids are dictionary-encoded: a row group's distinct ids (at most
# ROW_GROUP_ROWS / USER_RUNS) fit below it unless they are long, where pyarrow's 1 MB default falls back to plain
# pages after ~90K ids of 7 characters; a writer holds at most this much per dictionary-encoded column.
USER_DICTIONARY_BYTES = 64 << 20
# Bytes read and digested at a time when checking a file's digest (see _data_crc): fits in the L2 cache.
DIGEST_CHUNK = 1 << 20


def write_event_log(log: EventLog | LazyEventLog, path: str | Path) -> Path:
    """Write atomically and check the file reads back before it takes the target's place: readers see the
    old file or a complete new one that opens, never half of one, nor one they cannot read.

    A LazyEventLog is streamed into the file (a batch of ROW_GROUP_ROWS events at a time), so a log larger
    than memory converts in bounded memory. Actions and text extras are dictionary-encoded (few distinct
    values, read back faster); user ids only when the first batch has them in runs (see USER_RUNS): in a log
    grouped by user the dictionary reads back faster, in a shuffled one slower than plain pages."""
    metadata = {SCHEMA_KEY: log.schema.to_json().encode(), VOCABULARY_KEY: log.vocabulary.to_json().encode()}
    columns = log.frame.collect_schema() if isinstance(log, LazyEventLog) else log.frame.schema
    batches = (log.frame.collect_batches(chunk_size=ROW_GROUP_ROWS) if isinstance(log, LazyEventLog)
               else log.frame.iter_slices(ROW_GROUP_ROWS))
    with atomic_path(path) as tmp:
        _write_batches(tmp, batches, columns, log.schema, metadata)
        _check_reads_back(tmp, log, columns, Path(path))
    return Path(path)


def _write_batches(tmp: Path, batches: Iterable[pl.DataFrame], columns: pl.Schema, schema: Schema,
                   metadata: dict[bytes, bytes]) -> None:
    """The batches as row groups of one file; the checked record, whose digest covers every byte before the
    footer, is added to the footer last (the row groups are in the file by then)."""
    arrow_schema = pl.DataFrame(schema=columns).to_arrow().schema.with_metadata(metadata)
    batches = iter(batches)
    first = next(batches, None)
    users = first is not None and _users_in_runs(first)
    dictionary = [ACTION, *(c for c, kind in schema.extras.items() if kind == "str"), *([USER] if users else [])]
    rows = 0
    with open(tmp, "wb") as handle:
        sink = _DigestingSink(handle)
        with pq.ParquetWriter(sink, arrow_schema, compression=COMPRESSION, use_dictionary=dictionary,
                              dictionary_pagesize_limit=USER_DICTIONARY_BYTES if users else None) as writer:
            for batch in itertools.chain([] if first is None else [first], batches):
                writer.write_table(batch.to_arrow().cast(arrow_schema), row_group_size=ROW_GROUP_ROWS)
                rows += batch.height
            writer.add_key_value_metadata({CHECKED_KEY: _checked_record(rows, sink.size, sink.crc, metadata)})


def _users_in_runs(batch: pl.DataFrame) -> bool:
    """Whether the batch's user ids come in runs of USER_RUNS or more events on average."""
    runs = batch.get_column(USER).rle_id().max()  # the id of the last run: runs - 1, None when empty
    return runs is not None and batch.height >= USER_RUNS * (runs + 1)


class _DigestingSink(io.RawIOBase):
    """A binary file that keeps the CRC-32 and the count of the bytes written through it."""

    def __init__(self, handle: io.BufferedWriter) -> None:
        super().__init__()
        self._handle, self.crc, self.size = handle, 0, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
        return self._handle.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._handle.flush()


def _checked_record(rows: int, data_bytes: int, data_crc: int, metadata: dict[bytes, bytes]) -> bytes:
    """What the footer records about the rows that passed the checks: their number, and a CRC-32 of the bytes
    before the footer (the data pages) continued over the schema and vocabulary JSON (an edited vocabulary
    changes what the checks mean). CRC-32 finds changes, not forgery: whoever can write the file can also
    make the rows wrong and the digest right."""
    crc = zlib.crc32(metadata[VOCABULARY_KEY], zlib.crc32(metadata[SCHEMA_KEY], data_crc))
    return json.dumps({"rows": rows, "data_bytes": data_bytes, "crc32": crc}).encode()


def rows_unchanged(path: str | Path, footer: pq.FileMetaData) -> bool:
    """Whether the file at `path`, whose footer is `footer`, holds the rows write_event_log checked: its
    checked record is there and its digest still matches (one pass over the data pages, ~0.035 s per
    100 MB). False for files without a record (older behaviorlab, other writers)."""
    metadata = footer.metadata or {}
    try:
        record = json.loads(metadata[CHECKED_KEY])
        rows, data_bytes = int(record["rows"]), int(record["data_bytes"])
    except (KeyError, ValueError, TypeError):
        return False
    if footer.num_rows != rows or Path(path).stat().st_size - footer.serialized_size - 8 != data_bytes or data_bytes <= 0:
        return False
    data_crc = _data_crc(path, data_bytes)
    return data_crc is not None and _checked_record(rows, data_bytes, data_crc, metadata) == metadata[CHECKED_KEY]


def _data_crc(path: str | Path, data_bytes: int) -> int | None:
    """The CRC-32 of the first `data_bytes` bytes of the file, or None if it is shorter (cut since its size was
    read). Read DIGEST_CHUNK bytes at a time into one buffer, each chunk digested while the CPU cache still
    holds it: on the 163 MB file of 10M events, 0.055 s of CPU against 0.076 s for one CRC over the whole
    file memory-mapped, and 0.073 s over the whole file already read into memory (so the gain is the cache)."""
    crc, left = 0, data_bytes
    with open(path, "rb", buffering=0) as handle, memoryview(bytearray(DIGEST_CHUNK)) as buffer:
        while left:
            read = handle.readinto(buffer[:min(left, DIGEST_CHUNK)])
            if not read:
                return None
            crc, left = zlib.crc32(buffer[:read], crc), left - read
    return crc


def _check_reads_back(written: Path, log: EventLog | LazyEventLog, columns: pl.Schema, target: Path) -> None:
    """Open `written` as read_event_log does and compare it with `log`: the footer (parsed by pyarrow and by
    polars, each with its own size limits), the schema and vocabulary in its metadata, the column types and
    the row count. The data pages are not decoded again: what fails to read back is a footer grown past the
    readers' limits (a huge value in the column statistics, a huge vocabulary), not the pages pyarrow encodes."""
    try:
        metadata = event_log_metadata(read_footer(written))
        scan = pl.scan_parquet(written)
        same = metadata is not None and (
            Schema.from_json(metadata[SCHEMA_KEY].decode()) == log.schema
            and Vocabulary.from_json(metadata[VOCABULARY_KEY].decode()) == log.vocabulary
            and scan.collect_schema() == columns
            and scan.select(pl.len()).collect().item() == log.n_events)
    except DataError as exc:  # pyarrow could not parse the footer, or the metadata in it
        raise _unreadable_output(target, exc.problems[0].message if exc.problems else exc.message) from exc
    except pl.exceptions.PolarsError as exc:  # polars could not
        raise _unreadable_output(target, str(exc)) from exc
    if not same:
        raise DataError(f"{target} was not written: the Parquet file reads back differently from the log",
                        hint="Nothing was changed. This is a bug in behaviorlab; please report it with the input.")


def _unreadable_output(target: Path, reason: str) -> DataError:
    return DataError(f"{target} was not written: the Parquet file would not read back",
                     [Problem(reason.strip().splitlines()[0])],
                     hint="Nothing was changed. Shorten very long values (ids, actions, descriptions) or split the "
                          "vocabulary: Parquet keeps them in a footer that its readers limit in size.")


def read_footer(path: str | Path) -> pq.FileMetaData:
    """The footer of a Parquet file (its schema, row groups and key-value metadata), or a DataError when it is
    unreadable. Parsed once per load: with a large vocabulary in it, it is not free."""
    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file", [Problem(str(exc).strip())],
                        hint="Check that the file is Parquet and complete.") from exc


def event_log_metadata(footer: pq.FileMetaData) -> dict[bytes, bytes] | None:
    """The behaviorlab metadata in a Parquet footer, or None when write_event_log did not write the file.

    Read from the footer's key-value pairs, where both pyarrow and polars' sink put it (pyarrow's schema
    reader would take the copy inside its own ARROW:schema entry instead, which only pyarrow writes)."""
    metadata = footer.metadata or {}
    return metadata if SCHEMA_KEY in metadata and VOCABULARY_KEY in metadata else None


def parquet_parts(folder: Path) -> list[Path]:
    """The Parquet files of a partitioned folder, in path order (hive key=value/ sub-folders included);
    files whose names start with '.' or '_' (writers' temporary and _SUCCESS files) are not data."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".parquet", ".pq") and p.is_file()
                  and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts))


def scan_parquet(path: Path) -> pl.LazyFrame:
    """A lazy scan of one Parquet file or of every part of a partitioned folder; hive key=value folder
    names become columns (typed by Polars: key=3 an integer, key=x text)."""
    if not path.is_dir():
        return pl.scan_parquet(path)
    parts = parquet_parts(path)
    if not parts:
        raise DataError(f"{path} holds no Parquet files", hint="Point at a folder of *.parquet files (or key=value/ sub-folders of them).")
    return pl.scan_parquet(parts, hive_partitioning=True)


def read_event_log(path: str | Path, footer: pq.FileMetaData | None = None) -> EventLog:
    """The EventLog in a file write_event_log wrote; `footer` is its read_footer, when the caller has it."""
    footer = read_footer(path) if footer is None else footer
    metadata = event_log_metadata(footer)
    if metadata is None:
        raise DataError(f"{path} has no behaviorlab schema in its metadata",
                        hint="Load it as a generic table with --format parquet --map user=...,time=...,action=....")
    schema = Schema.from_json(metadata[SCHEMA_KEY].decode())
    vocabulary = Vocabulary.from_json(metadata[VOCABULARY_KEY].decode())
    # The rows and the digest are read through two opens: a file replaced or rewritten between them would pair
    # one file's rows with the other's digest, so the row checks are skipped only if the file stayed the same.
    before = _file_identity(path)
    frame = pl.read_parquet(path)
    if rows_unchanged(path, footer) and _file_identity(path) == before:
        return EventLog.with_rows_checked(frame, schema, vocabulary)
    return EventLog(frame, schema, vocabulary)


def _file_identity(path: str | Path) -> tuple[int, int, int, int]:
    """What changes when a file is replaced (a rename over it: a new inode) or rewritten in place."""
    status = os.stat(path)
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns
