"""Turn any table (lazy Polars frame) into an EventLog through a column mapping.

Every format loader ends here, so ids, times and extras are parsed, checked and reported one way:
a row whose id is missing or whose time or extra value cannot be parsed is listed, by its 1-based
data row number, in one DataError; nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from pydantic import Field, field_validator

from behaviorlab.config import StrictConfig
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import (
    ACTION,
    POSITION,
    TIMESTAMP,
    USER,
    Domain,
    EventLog,
    ExtraType,
    Schema,
    Vocabulary,
    has_missing_values,
)

# How the time column is read. "auto" looks at the first values: ISO text -> timestamps; integers of
# 11+ digits -> epoch ms, 9-10 digits -> epoch s, smaller -> positions. A value containing '%' is a
# strptime pattern. "row_order" ignores any time column and numbers each user's rows in file order.
_NAMED_TIME_FORMATS = ("auto", "iso", "epoch_s", "epoch_ms", "position", "row_order")
SNIFF_ROWS = 1000
_EXTRA_CASTS: dict[str, pl.DataType] = {"str": pl.String(), "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean()}
_MAX_LISTED_ROWS = 50


class ColumnMapping(StrictConfig):
    """Which source columns hold the user, the time, the action and the kept extras."""

    user: str = USER
    time: str = TIMESTAMP
    action: str = ACTION
    time_format: str = "auto"  # one of _NAMED_TIME_FORMATS or a strptime pattern
    extras: dict[str, ExtraType] = Field(default_factory=dict)  # source column -> type, kept under its own name
    descriptions: str | None = None  # a column describing each action (e.g. the item title) for the vocabulary
    name: str = "events"
    domain: Domain = "generic"
    action_meaning: str = "action"

    @field_validator("time_format")
    @classmethod
    def _known_time_format(cls, value: str) -> str:
        if value not in _NAMED_TIME_FORMATS and "%" not in value:
            raise ValueError(f"time_format must be one of {list(_NAMED_TIME_FORMATS)} or a strptime pattern like %Y-%m-%d %H:%M")
        return value

    @field_validator("extras")
    @classmethod
    def _no_canonical_names(cls, extras: dict[str, ExtraType]) -> dict[str, ExtraType]:
        clash = sorted(set(extras) & {USER, TIMESTAMP, POSITION, ACTION})
        if clash:
            raise ValueError(f"extras cannot be named {clash}: those are the canonical columns; rename them in the source")
        return extras


def parse_mapping_flag(text: str) -> dict[str, str]:
    """'user=uid,time=ts,action=item' -> {'user': 'uid', ...} (the CLI's --map)."""
    values: dict[str, str] = {}
    problems = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            problems.append(Problem(f"'{part}' is not key=value"))
        else:
            values[key.strip()] = value.strip()
    if problems:
        raise DataError("Invalid --map value", problems, hint="Write it like --map user=uid,time=ts,action=item.")
    return values


def _text_id(column: str, dtype: pl.DataType) -> pl.Expr:
    """Ids as text, taken as written (stripping whitespace would cost more than the CSV parse).

    Float id columns (pandas turns int ids with gaps into floats) give '12', not '12.0'; NaN is missing.
    """
    raw = pl.col(column)
    if dtype.is_float():
        whole = raw.cast(pl.Int64, strict=False).cast(pl.String)
        return pl.when(raw.is_nan()).then(None).when(raw == raw.floor()).then(whole).otherwise(raw.cast(pl.String))
    return raw.cast(pl.String)


def _time_kind(frame: pl.LazyFrame, column: str, time_format: str) -> str:
    """Resolve 'auto' from the column's type and its first values."""
    if time_format != "auto":
        return time_format  # row_order included: the column is then never read
    dtype = frame.collect_schema()[column]
    if isinstance(dtype, pl.Datetime | pl.Date):
        return "datetime"
    head = frame.select(pl.col(column)).head(SNIFF_ROWS).collect().get_column(column).drop_nulls()
    if dtype == pl.String:
        # Mostly numbers -> numeric times (the few other values are then reported as bad rows).
        text = head.str.strip_chars()
        numeric = text.str.contains(r"^-?\d+(\.\d*)?$")
        if text.len() == 0 or numeric.mean() < 0.5:  # type: ignore[operator]
            return "iso"
        numbers = text.filter(numeric)
        if not numbers.str.contains(r"^-?\d+$").all():
            return "epoch_s"  # decimal numbers: epoch seconds
        head = numbers.cast(pl.Int64)
    if dtype.is_float():
        return "epoch_s"
    largest = int(head.abs().max() or 0) if head.len() else 0
    return "epoch_ms" if largest >= 10**11 else "epoch_s" if largest >= 10**8 else "position"


def resolve_time_format(sample: pl.DataFrame, mapping: ColumnMapping) -> tuple[ColumnMapping, bool]:
    """(mapping with 'auto' replaced by what the sample's time column holds, whether that is integers).

    Integer epochs or positions may then be parsed as Int64 by a reader directly, which is several
    times cheaper than text -> float; a sample lets the reader skip sniffing the whole file.
    """
    if mapping.time_format == "row_order" or mapping.time not in sample.columns:
        return mapping, False
    kind = _time_kind(sample.lazy(), mapping.time, mapping.time_format)
    if kind not in _NAMED_TIME_FORMATS and "%" not in kind:  # a typed datetime column needs no format
        return mapping, False
    values = sample.get_column(mapping.time).drop_nulls()
    integers = kind in ("epoch_s", "epoch_ms", "position") and values.len() > 0 and (
        values.dtype.is_integer() or (values.dtype == pl.String and bool(values.str.contains(r"^-?\d+$").all())))
    return mapping.model_copy(update={"time_format": kind}), integers


def _time_expr(column: str, kind: str, dtype: pl.DataType) -> pl.Expr:
    raw = pl.col(column)
    if kind == "datetime":
        return raw  # already a date/datetime; made UTC after collecting (see _as_utc)
    if kind == "iso":
        return raw.cast(pl.String).str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
    if "%" in kind:
        return raw.cast(pl.String).str.to_datetime(kind, strict=False, time_unit="us", time_zone="UTC")
    if kind == "position":
        return raw.cast(pl.Int64, strict=False)
    scale = {"epoch_s": 1_000_000, "epoch_ms": 1_000}.get(kind)
    if scale is None:
        raise DataError(f"Unknown time format {kind!r}",
                        hint="Use auto, iso, epoch_s, epoch_ms, position, or a strptime pattern such as %Y-%m-%d %H:%M.")
    if dtype.is_integer():
        return (raw.cast(pl.Int64) * scale).cast(pl.Datetime("us"))
    # Float64 reads both "881250949" and "881250949.5"; epoch microseconds stay below 2**53, so exact.
    return (raw.cast(pl.Float64, strict=False) * scale).round().cast(pl.Int64, strict=False).cast(pl.Datetime("us"))


def _as_utc(series: pl.Series) -> pl.Series:
    """Aware times are converted to UTC; naive ones are taken to be UTC already."""
    if isinstance(series.dtype, pl.Date):
        series = series.cast(pl.Datetime("us"))
    if series.dtype.time_zone is None:  # type: ignore[union-attr]
        return series.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return series.dt.cast_time_unit("us").dt.convert_time_zone("UTC")


def _extra_expr(column: str, kind: ExtraType, dtype: pl.DataType) -> pl.Expr:
    raw = pl.col(column)
    if kind == "datetime":
        return _time_expr(column, "datetime" if isinstance(dtype, pl.Datetime | pl.Date) else "iso", dtype)
    if kind == "bool" and dtype == pl.String:
        lowered = raw.str.strip_chars().str.to_lowercase()
        return pl.when(lowered.is_in(["true", "1", "yes"])).then(True).when(lowered.is_in(["false", "0", "no"])).then(False)
    if kind == "str":
        return raw.cast(pl.String)
    return raw.cast(_EXTRA_CASTS[kind], strict=False)


def _missing_columns(available: list[str], mapping: ColumnMapping) -> list[Problem]:
    wanted = {"user": mapping.user, "action": mapping.action}
    if mapping.time_format != "row_order":
        wanted["time"] = mapping.time
    wanted |= {f"extra {c}": c for c in mapping.extras}
    if mapping.descriptions:
        wanted["descriptions"] = mapping.descriptions
    return [Problem(f"the {role} column is missing", column=column)
            for role, column in wanted.items() if column not in available]


def _unreadable(source: str, exc: Exception) -> DataError:
    return DataError(f"{source}: could not be read as a table", [Problem(str(exc).strip().splitlines()[0])],
                     hint="Check the separator, the encoding (UTF-8) and that every row has the same columns.")


def _row_problems(flags: pl.DataFrame) -> list[Problem]:
    """One Problem per bad (row, column), rows counted from 1; at most _MAX_LISTED_ROWS per column."""
    problems: list[Problem] = []
    for name in flags.columns:
        bad = flags.get_column(name).arg_true()
        what, column = name.split("|", 1)
        problems.extend(Problem(what, row=int(r) + 1, column=column) for r in bad.head(_MAX_LISTED_ROWS).to_list())
        if bad.len() > _MAX_LISTED_ROWS:
            problems.append(Problem(f"{what}: {bad.len() - _MAX_LISTED_ROWS:,} more rows like this", column=column))
    return problems


def _plan(mapping: ColumnMapping, dtypes: pl.Schema, kind: str, time_name: str) -> tuple[list[pl.Expr], list[pl.Expr], list[pl.Expr]]:
    """(output columns, flags for ids and time, flags for extras).

    Flags are named "<problem>|<source column>", true on bad rows. Id and time flags are only computed
    when the loaded columns show a problem; extras need theirs up front, because a missing extra value
    is allowed and only the raw column tells "missing" from "unparsable".
    """
    user, action = _text_id(mapping.user, dtypes[mapping.user]), _text_id(mapping.action, dtypes[mapping.action])
    columns = [user.alias(USER), action.alias(ACTION)]
    core_flags = [
        (user.is_null() | (user.str.len_bytes() == 0)).alias(f"user id is missing, NaN or empty|{mapping.user}"),
        (action.is_null() | (action.str.len_bytes() == 0)).alias(f"action is missing, NaN or empty|{mapping.action}"),
    ]
    if kind == "row_order":
        columns.append(pl.int_range(pl.len()).over(user).cast(pl.Int64).alias(POSITION))
    else:
        parsed = _time_expr(mapping.time, kind, dtypes[mapping.time])
        columns.append(parsed.alias(time_name))
        core_flags.append(parsed.is_null().alias(f"time is missing or not a valid {kind} value|{mapping.time}"))
    extra_flags = []
    for column, extra_kind in mapping.extras.items():
        parsed = _extra_expr(column, extra_kind, dtypes[column])
        columns.append(parsed.alias(column))
        extra_flags.append((pl.col(column).is_not_null() & parsed.is_null()).alias(f"is not a valid {extra_kind}|{column}"))
    if mapping.descriptions:
        columns.append(pl.col(mapping.descriptions).cast(pl.String).alias("_description"))
    return columns, core_flags, extra_flags


def event_log_from_frame(frame: pl.LazyFrame | pl.DataFrame, mapping: ColumnMapping, *, source: str,
                         descriptions: Mapping[str, str] | None = None) -> EventLog:
    """Parse and check `frame` into an EventLog (timestamps in UTC, or positions).

    `descriptions` (action -> text) wins over the mapping's description column.
    """
    lazy = frame.lazy()
    try:
        dtypes = lazy.collect_schema()
        problems = _missing_columns(dtypes.names(), mapping)
        if not problems:
            kind = _time_kind(lazy, mapping.time, mapping.time_format)
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(source, exc) from exc
    if problems:
        raise DataError(f"{source}: columns are missing", problems,
                        hint=f"The file has columns {dtypes.names()}; map yours with --map user=...,time=...,action=... "
                             "or a TOML mapping, or force another --format.")
    time_name = POSITION if kind in ("position", "row_order") else TIMESTAMP
    columns, core_flags, extra_flags = _plan(mapping, dtypes, kind, time_name)
    try:
        table = lazy.select(*columns, *extra_flags).collect(engine="streaming")
        flags = table.select([f.meta.output_name() for f in extra_flags])
        if has_missing_values(table, (USER, ACTION, time_name), empty_text=(USER, ACTION)):  # bad input only: a second pass finds the rows
            flags = pl.concat([lazy.select(*core_flags).collect(engine="streaming"), flags], how="horizontal")
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(source, exc) from exc
    problems = _row_problems(flags)
    if problems:
        raise DataError(f"{source}: {len(problems)} problem{'' if len(problems) == 1 else 's'} in the rows", problems,
                        hint="Fix or remove these rows (rows are counted from 1 after the header), or set time_format.")
    table = table.drop(flags.columns, strict=False)
    if table.height == 0:
        raise DataError(f"{source}: the file has no events", hint="Check that this is the right file and that it has data rows.")
    time_columns = [TIMESTAMP] if time_name == TIMESTAMP else []
    time_columns += [c for c, k in mapping.extras.items() if k == "datetime"]
    table = table.with_columns([_as_utc(table.get_column(c)) for c in time_columns])
    text = dict(descriptions or {})
    if mapping.descriptions and not descriptions:
        pairs = table.select(ACTION, "_description").unique(ACTION, keep="first")
        text = {a: d for a, d in pairs.iter_rows() if d}
    if mapping.descriptions:
        table = table.drop("_description")
    schema = Schema(name=mapping.name, domain=mapping.domain, time=time_name, extras=dict(mapping.extras),
                    action_meaning=mapping.action_meaning, source=source)
    if not text:  # the EventLog builds the vocabulary itself: one pass over the actions instead of two
        return EventLog(table, schema)
    return EventLog(table, schema, Vocabulary.from_actions(table.get_column(ACTION).unique().to_list(), text))


def concat_logs(logs: list[EventLog], *, source: str) -> EventLog:
    """Stack logs of one schema (e.g. the train/valid/test files of one dataset); vocabularies merge."""
    if not logs:
        raise DataError(f"{source}: nothing to load", hint="Point at a file or a folder with data files.")
    schema = Schema.model_validate(logs[0].schema.model_dump() | {"source": source})
    descriptions: dict[str, str] = {}
    for log in logs:
        descriptions |= dict(log.vocabulary.descriptions)
    frame = pl.concat([log.frame for log in logs], how="vertical")
    return EventLog(frame, schema, Vocabulary.from_actions(descriptions, descriptions))


def with_extras(log: EventLog, columns: Mapping[str, tuple[pl.Expr, ExtraType]]) -> EventLog:
    """The log with more typed extras computed from its own columns (e.g. local hour from time + offset)."""
    extras = dict(log.schema.extras) | {name: kind for name, (_, kind) in columns.items()}
    schema = log.schema.model_dump() | {"extras": extras}
    frame = log.frame.with_columns([expr.alias(name) for name, (expr, _) in columns.items()])
    # model_validate re-runs the Schema checks (model_copy would skip them)
    return EventLog(frame, Schema.model_validate(schema), log.vocabulary)
