"""EventLog <-> Parquet, with the schema and vocabulary in the file's key-value metadata.

A file written here reads back as the same EventLog (columns, types, schema, vocabulary text). A folder
of Parquet files (a plain folder of *.parquet, or hive-style key=value/ sub-folders) reads as one table.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from behaviorlab.atomic import atomic_path
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import EventLog, LazyEventLog, Schema, Vocabulary

SCHEMA_KEY = b"behaviorlab.schema"
VOCABULARY_KEY = b"behaviorlab.vocabulary"


def write_event_log(log: EventLog | LazyEventLog, path: str | Path) -> Path:
    """Write atomically and check the file reads back before it takes the target's place: readers see the
    old file or a complete new one that opens, never half of one, nor one they cannot read.

    A LazyEventLog is streamed into the file (polars' sink, row group by row group), so a log larger than
    memory converts in bounded memory."""
    metadata = {SCHEMA_KEY: log.schema.to_json().encode(), VOCABULARY_KEY: log.vocabulary.to_json().encode()}
    with atomic_path(path) as tmp:
        if isinstance(log, LazyEventLog):
            log.frame.sink_parquet(tmp, compression="zstd", metadata={k.decode(): v.decode() for k, v in metadata.items()})
            columns = log.frame.collect_schema()
        else:
            table = log.frame.to_arrow()
            pq.write_table(table.replace_schema_metadata(dict(table.schema.metadata or {}) | metadata), tmp, compression="zstd")
            columns = log.frame.schema
        _check_reads_back(tmp, log, columns, Path(path))
    return Path(path)


def _check_reads_back(written: Path, log: EventLog | LazyEventLog, columns: pl.Schema, target: Path) -> None:
    """Open `written` as read_event_log does and compare it with `log`: the footer (parsed by pyarrow and by
    polars, each with its own size limits), the schema and vocabulary in its metadata, the column types and
    the row count. The data pages are not decoded again: what fails to read back is a footer grown past the
    readers' limits (a huge value in the column statistics, a huge vocabulary), not the pages pyarrow encodes."""
    try:
        metadata = event_log_metadata(written)
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


def read_parquet_schema(path: str | Path) -> pa.Schema:
    """The Arrow schema of a Parquet file, or a DataError when it is unreadable."""
    return _footer(path).schema.to_arrow_schema()


def _footer(path: str | Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file", [Problem(str(exc).strip())],
                        hint="Check that the file is Parquet and complete.") from exc


def event_log_metadata(path: str | Path) -> dict[bytes, bytes] | None:
    """The behaviorlab metadata of a Parquet file, or None when it was not written by write_event_log.

    Read from the footer's key-value pairs, where both pyarrow and polars' sink put it (pyarrow's schema
    reader would take the copy inside its own ARROW:schema entry instead, which only pyarrow writes)."""
    metadata = _footer(path).metadata or {}
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


def read_event_log(path: str | Path) -> EventLog:
    metadata = event_log_metadata(path)
    if metadata is None:
        raise DataError(f"{path} has no behaviorlab schema in its metadata",
                        hint="Load it as a generic table with --format parquet --map user=...,time=...,action=....")
    schema = Schema.from_json(metadata[SCHEMA_KEY].decode())
    vocabulary = Vocabulary.from_json(metadata[VOCABULARY_KEY].decode())
    return EventLog(pl.read_parquet(path), schema, vocabulary)
