"""Generic tables: delimited text (any separator, with or without a header), JSON lines and Parquet,
read through a ColumnMapping.

CSV is scanned lazily with every column as text, so ids keep leading zeros and every value that does
not parse is reported by row instead of failing the whole read. Before any reader runs, the start of
the file is checked (one small read): text must be UTF-8, and no column name may occur twice.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import mmap
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import polars as pl
import pyarrow.parquet as pq

from behaviorlab.datasets.delimited import field_counts, head_lines, separator_flag, separator_name, sniff_separator
from behaviorlab.datasets.files import TEXT_HEAD_BYTES, refuse_repeated_names, require_file, require_utf8_head
from behaviorlab.datasets.mapping import (
    SNIFF_ROWS,
    ColumnMapping,
    concat_logs,
    event_log_from_frame,
    lazy_event_log,
    merged_vocabulary,
    resolve_positions,
    resolve_time_format,
)
from behaviorlab.datasets.parquet import (
    SCHEMA_KEY,
    VOCABULARY_KEY,
    event_log_metadata,
    parquet_parts,
    read_event_log,
    read_footer,
    rows_unchanged,
    scan_parquet,
)
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import EventLog, LazyEventLog, Schema, Vocabulary

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_Log = TypeVar("_Log", EventLog, LazyEventLog)


def _suffix_separator(path: Path) -> str:
    return "\t" if path.suffix in (".tsv", ".txt") else ","


def choose_separator(path: Path, separator: str | None = None) -> str:
    """The separator to read `path` with: `separator` when given, else the one its first lines show,
    else the one its suffix suggests (tab for .tsv/.txt, comma otherwise).

    A given separator that leaves the header in one piece while another splits the sampled lines evenly
    is refused with that other one named, since every column would otherwise be missing.
    """
    head = require_utf8_head(path)
    lines = head_lines(head, complete=len(head) < TEXT_HEAD_BYTES)[:SNIFF_ROWS + 1]
    sniffed = sniff_separator(lines)
    if separator is None:
        return sniffed or _suffix_separator(path)
    if sniffed is not None and sniffed != separator and lines and field_counts(lines[:1], separator) == [1]:
        raise DataError(f"{path}: read with the separator {separator_name(separator)}, its first line is one column: {lines[0][:200]!r}",
                        hint=f"The file seems to be separated by {separator_name(sniffed)}: pass --sep {separator_flag(sniffed)}.")
    return separator


def scan_text_table(path: Path, separator: str | None = None, integer_columns: tuple[str, ...] = (),
                    header: bool = True) -> pl.LazyFrame:
    """Lazy scan of a delimited text file; all columns as text except `integer_columns`.

    Without a header the columns are named by their index, "0", "1", ..., which is what a positional
    mapping (--map user=0,action=1) names."""
    require_file(path, "Table")
    separator = choose_separator(path, separator)
    names = _header(require_utf8_head(path), separator)
    if header:
        # The reader would rename a repeated column (user_id_duplicated_0) and read one copy: refused instead.
        refuse_repeated_names(path, names)
    # Strict UTF-8: the lossy decoder costs ~20% of the read; a non-UTF-8 file fails with a DataError.
    # low_memory: smaller parse buffers; measured both leaner and ~10% faster on the 2-core machine.
    # A file without a single '"' parses the same with quoting off, and the parser skips its quote state.
    return pl.scan_csv(path, separator=separator, infer_schema=False, encoding="utf8", low_memory=True,
                       has_header=header, new_columns=None if header else [str(i) for i in range(len(names))],
                       quote_char='"' if _has_quote(path) else None,
                       schema_overrides=dict.fromkeys(integer_columns, pl.Int64) or None)


def _header(head: bytes, separator: str) -> list[str]:
    """The column names on the first line of `head`, split as a CSV reader splits them (quotes honoured)."""
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return next(csv.reader([line], delimiter=separator), [])


def _has_quote(path: Path) -> bool:
    """Whether the file holds a '"' byte (one memchr pass over the mapped file, ~40 ms per 250 MB)."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return mapped.find(b'"') >= 0


def _first_rows(path: Path, separator: str, header: bool) -> pl.DataFrame:
    """The header and first SNIFF_ROWS lines, read directly (a lazy scan's head costs a whole parse set-up)."""
    with open(require_file(path, "Table"), "rb") as handle:
        head = b"".join(itertools.islice(handle, SNIFF_ROWS + 1))
    frame = pl.read_csv(io.BytesIO(head), separator=separator, infer_schema=False, has_header=header)
    return frame if header else frame.rename({c: str(i) for i, c in enumerate(frame.columns)})


def _refuse_data_as_header(path: Path, names: list[str], mapping: ColumnMapping) -> None:
    """A DataError when the mapped columns are not in a header that looks like a data row (every field a
    number): the file has no header, and saying so beats listing numbers as missing column names."""
    wanted = [mapping.user, mapping.action] + ([] if mapping.time_format == "row_order" else [mapping.time])
    if names and all(re.fullmatch(r"[-+.\d]+", n.strip()) for n in names) and not set(wanted) <= set(names):
        raise DataError(f"{path}: the first line looks like data, not column names: {names[:10]}",
                        hint="Pass --no-header and map the columns by index, counted from 0, "
                             "e.g. --map user=0,time=2,action=1 on `behaviorlab data convert`, "
                             "then use the Parquet it writes (in Python: header=False).")


def load_csv(path: Path, mapping: ColumnMapping | None = None, separator: str | None = None, header: bool = True) -> EventLog:
    """Delimited text with any separator (given, or told from the first lines) and with or without a header.

    The time format is settled from the first rows; integer times are then parsed by the CSV reader
    itself (the fast path). If any row is not an integer, the file is read again as text, so that
    float epochs are still accepted and every bad row is listed."""
    return _read_delimited(path, mapping, separator, header, event_log_from_frame)


def scan_csv(path: Path, mapping: ColumnMapping | None = None, separator: str | None = None, header: bool = True) -> LazyEventLog:
    """load_csv's reading and checks in streaming passes; the log is left lazy (see lazy_event_log)."""
    return _read_delimited(path, mapping, separator, header, lazy_event_log)


def _read_delimited(path: Path, mapping: ColumnMapping | None, separator: str | None, header: bool,
                    checked: Callable[..., _Log]) -> _Log:
    """`checked(scan, mapping, source=...)` of the file's scan, with the integer-time fast path when the first
    rows allow it (see load_csv)."""
    mapping = mapping or ColumnMapping()
    separator = choose_separator(require_file(path, "Table"), separator)
    try:
        sample = _first_rows(path, separator, header)
    except pl.exceptions.PolarsError:
        sample = None  # unreadable (or a quoted field spans lines): the full read below decides
    if sample is not None:
        mapping = resolve_positions(mapping, sample.columns)
        if header:
            _refuse_data_as_header(path, sample.columns, mapping)
        mapping, integers = resolve_time_format(sample, mapping)
        if integers:
            try:
                return checked(scan_text_table(path, separator, (mapping.time,), header), mapping, source=str(path))
            except DataError:
                pass  # some time value is not an integer: the text read below parses or lists it
    return checked(scan_text_table(path, separator, header=header), mapping, source=str(path))


def load_jsonl(path: Path, mapping: ColumnMapping | None = None) -> EventLog:
    """The first lines are checked with Python's json first (it tells the line and column of a syntax error,
    and sees a key given twice, which the reader would silently resolve); when the reader fails on a later
    line, the whole file is checked the same way to say which."""
    require_file(path, "JSON lines file")
    require_utf8_head(path)
    _check_json_lines(path, SNIFF_ROWS)
    frame = pl.scan_ndjson(path, infer_schema_length=10_000)
    try:
        return event_log_from_frame(frame, mapping or ColumnMapping(), source=str(path))
    except DataError as exc:
        if isinstance(exc.__cause__, pl.exceptions.PolarsError):
            _check_json_lines(path)
        raise


class _JsonObject(list):
    """A JSON object as json's object_pairs_hook hands it over: its (key, value) pairs, repeats included."""


def _check_json_lines(path: Path, limit: int | None = None) -> None:
    """A DataError for the first of the first `limit` lines (all when None) that is not one JSON object
    naming each key once."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(itertools.islice(handle, limit), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line, object_pairs_hook=_JsonObject)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} is not valid JSON lines", [Problem(f"line {number}, column {exc.colno}: {exc.msg}")],
                                hint="Write one JSON object per line; fix or remove this line.") from None
            if not isinstance(value, _JsonObject):
                raise DataError(f"{path} is not valid JSON lines",
                                [Problem(f"line {number} holds a JSON {type(value).__name__}, not an object")],
                                hint='Write one JSON object per line, e.g. {"user_id": "u1", "timestamp": 1700000000, "action": "open"}.')
            refuse_repeated_names(path, [key for key, _ in value], where=f"line {number}")


def load_parquet(path: Path, mapping: ColumnMapping | None = None) -> EventLog:
    """A file written by behaviorlab reads back losslessly; any other Parquet goes through the mapping.
    A folder of Parquet parts reads as one table (see scan_parquet); its rows are counted over the parts in
    path order."""
    footers = _parquet_footers(path)
    if mapping is None and all(event_log_metadata(footer) is not None for footer in footers.values()):
        logs = [read_event_log(part, footer) for part, footer in footers.items()]
        return logs[0] if not path.is_dir() else concat_logs(logs, source=str(path))
    return event_log_from_frame(scan_parquet(path), mapping or ColumnMapping(), source=str(path))


def scan_parquet_log(path: Path, mapping: ColumnMapping | None = None) -> LazyEventLog:
    """load_parquet left lazy. Files written by behaviorlab were checked when written: their schema, vocabulary
    and row count come from the footers and their column types are compared with the schema, and while each
    part's digest matches (rows_unchanged) the rows are not read again; a part changed since, or without a
    digest, has the rows checked in one streaming pass. Other Parquet is checked in streaming passes through the
    mapping (see lazy_event_log). Like every lazy log, it reads the files again on each use: a file replaced
    after the scan is read as it is then."""
    footers = _parquet_footers(path)
    metadata = [event_log_metadata(footer) for footer in footers.values()]
    if mapping is not None or any(m is None for m in metadata):
        return lazy_event_log(scan_parquet(path), mapping or ColumnMapping(), source=str(path))
    schema, *others = [Schema.from_json(m[SCHEMA_KEY].decode()) for m in metadata if m]
    frame = scan_parquet(path)
    if any(other != schema for other in others) or frame.collect_schema() != schema.dtypes():
        raise DataError(f"{path}: the parts do not share one schema or their columns differ from it",
                        hint="Write every part with the same schema, or load them one by one.")
    if path.is_dir():  # as concat_logs names the stacked log
        schema = Schema.model_validate(schema.model_dump() | {"source": str(path)})
    vocabularies = [Vocabulary.from_json(m[VOCABULARY_KEY].decode()) for m in metadata if m]
    vocabulary = vocabularies[0] if len(vocabularies) == 1 else merged_vocabulary(vocabularies)  # as concat_logs merges them
    log = LazyEventLog(frame, schema, vocabulary, frame.select(pl.len()).collect().item())
    return log if all(rows_unchanged(part, footer) for part, footer in footers.items()) else log.checked()


def _parquet_footers(path: Path) -> dict[Path, pq.FileMetaData]:
    """The footer of the file, or of each part of a folder (a DataError for a folder without parts), each
    checked for column names given twice."""
    if path.is_dir():
        scan_parquet(path)  # a DataError for a folder without parts
        parts = parquet_parts(path)
    else:
        parts = [require_file(path, "Parquet file")]
    footers = {part: read_footer(part) for part in parts}
    for part, footer in footers.items():
        refuse_repeated_names(part, footer.schema.to_arrow_schema().names, where="the schema")
    return footers
