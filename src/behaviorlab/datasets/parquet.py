"""EventLog <-> Parquet, with the schema and vocabulary in the file's key-value metadata.

A file written here reads back as the same EventLog (columns, types, schema, vocabulary text).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from behaviorlab.atomic import atomic_path
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import EventLog, Schema, Vocabulary

SCHEMA_KEY = b"behaviorlab.schema"
VOCABULARY_KEY = b"behaviorlab.vocabulary"


def write_event_log(log: EventLog, path: str | Path) -> Path:
    """Write atomically: readers see the old file or the complete new one, never half of it."""
    table = log.frame.to_arrow()
    metadata = dict(table.schema.metadata or {}) | {
        SCHEMA_KEY: log.schema.to_json().encode(),
        VOCABULARY_KEY: log.vocabulary.to_json().encode(),
    }
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata), tmp, compression="zstd")
    return Path(path)


def event_log_metadata(path: str | Path) -> dict[bytes, bytes] | None:
    """The behaviorlab metadata of a Parquet file, or None when it was not written by write_event_log."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file", [Problem(str(exc))],
                        hint="Check that the file is Parquet and complete.") from exc
    return metadata if SCHEMA_KEY in metadata and VOCABULARY_KEY in metadata else None


def read_event_log(path: str | Path) -> EventLog:
    metadata = event_log_metadata(path)
    if metadata is None:
        raise DataError(f"{path} has no behaviorlab schema in its metadata",
                        hint="Load it as a generic table with --format parquet --map user=...,time=...,action=....")
    schema = Schema.from_json(metadata[SCHEMA_KEY].decode())
    vocabulary = Vocabulary.from_json(metadata[VOCABULARY_KEY].decode())
    return EventLog(pl.read_parquet(path), schema, vocabulary)
