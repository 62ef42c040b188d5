"""Turn any table (lazy Polars frame) into an EventLog through a column mapping.

Every format loader ends here, so ids, times and extras are parsed, checked and reported one way:
a row whose id is missing or whose time or extra value cannot be parsed is listed, by its 1-based
data row number, in one DataError; nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from behaviorlab.config import StrictConfig
from behaviorlab.datasets.files import find_not_utf8
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import (
    ACTION,
    POSITION,
    TIMESTAMP,
    USER,
    Domain,
    EventLog,
    ExtraType,
    LazyEventLog,
    Schema,
    Vocabulary,
)

_NAMED_TIME_FORMATS = ("auto", "iso", "epoch", "position", "row_order")  # or a strptime pattern (with '%')
EPOCH_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}  # ticks per second
EpochUnit = Literal["auto", "s", "ms", "us", "ns"]
# 10**8 s is March 1973: under time_format="auto", smaller whole numbers are positions, and a unit is
# chosen so that the largest value is at least this many seconds.
_EPOCH_FLOOR = 10**8
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_WHOLE = r"^-?\d+$"  # what the CSV reader parses as Int64 itself (the fast path)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH_DAY = date(1970, 1, 1)
SNIFF_ROWS = 1000
# Ids, actions and text values longer than this are refused with their rows: Parquet keeps each value in
# its footer statistics, and a footer past ~100 MB cannot be read back. 1 MiB is far above any real id.
MAX_TEXT_BYTES = 1 << 20
_EXTRA_CASTS: dict[str, pl.DataType] = {"str": pl.String(), "int": pl.Int64(), "float": pl.Float64(), "bool": pl.Boolean()}
_MAX_LISTED_ROWS = 50
_DESCRIPTION = "_description"  # the loaded description column, dropped once the vocabulary has it


class ColumnMapping(StrictConfig):
    """Which source columns hold the user, the time, the action and the kept extras, and how times are read.

    time_format: how the time column is written. "auto" (the default) decides from the column:
      date/datetime columns are taken as they are, text that is mostly numbers and number columns are
      epoch times, other text is ISO-8601; whole numbers below 10**8 are positions (an order, not a
      time). "iso", "epoch" and "position" force one reading; a value containing '%' is a strptime
      pattern; "row_order" ignores any time column and numbers each user's rows in file order.
    time_unit: the unit of epoch numbers, "s", "ms", "us" or "ns". "auto" (the default) takes the unit in
      which the largest of the first 1,000 values is at least 10**8 seconds (March 1973): each unit is
      1,000 times the last, and 10**11 is 1973 in ms but the year 5138 in s, so for data from 1973 to
      5138 exactly one unit fits (the thresholds are 10**8 s, 10**11 ms, 10**14 us, 10**17 ns). Setting
      a unit says the column holds epoch numbers. "epoch_s", "epoch_ms", "epoch_us" and "epoch_ns" are
      short for time_format="epoch" with that time_unit; they mean exactly the same.
    min_year, max_year: every time must fall within these years (both included; 1970..2100 by default),
      so that a wrong unit or a sentinel such as 0001-01-01 is listed by row instead of loaded as a
      wrong time. Widen them for older or later data, e.g. min_year=1900.
    """

    user: str = USER
    time: str = TIMESTAMP
    action: str = ACTION
    time_format: str = "auto"  # one of _NAMED_TIME_FORMATS or a strptime pattern
    time_unit: EpochUnit = "auto"
    min_year: int = Field(1970, ge=1, le=9999)  # 1..9999: the years a Python datetime can hold
    max_year: int = Field(2100, ge=1, le=9999)
    extras: dict[str, ExtraType] = Field(default_factory=dict)  # source column -> type, kept under its own name
    descriptions: str | None = None  # a column describing each action (e.g. the item title) for the vocabulary
    name: str = "events"
    domain: Domain = "generic"
    action_meaning: str = "action"

    @model_validator(mode="before")
    @classmethod
    def _epoch_shorthand(cls, values: Any) -> Any:
        """time_format="epoch_ms" -> time_format="epoch", time_unit="ms"."""
        time_format = values.get("time_format") if isinstance(values, dict) else None
        unit = time_format.removeprefix("epoch_") if isinstance(time_format, str) else None
        if unit not in EPOCH_UNITS:
            return values
        if values.get("time_unit", "auto") not in ("auto", unit):
            raise ValueError(f"time_format={time_format} and time_unit={values['time_unit']} name different units; give one")
        return values | {"time_format": "epoch", "time_unit": unit}

    @field_validator("time_format")
    @classmethod
    def _known_time_format(cls, value: str) -> str:
        if value not in _NAMED_TIME_FORMATS and "%" not in value:
            raise ValueError(f"time_format must be one of {list(_NAMED_TIME_FORMATS)}, epoch_s/ms/us/ns, "
                             "or a strptime pattern like %Y-%m-%d %H:%M")
        return value

    @model_validator(mode="after")
    def _time_settings_agree(self) -> ColumnMapping:
        if self.time_unit != "auto" and self.time_format not in ("auto", "epoch"):
            raise ValueError(f"time_unit applies to epoch numbers only, not to time_format={self.time_format!r}")
        if self.min_year > self.max_year:
            raise ValueError(f"min_year {self.min_year} is after max_year {self.max_year}")
        return self

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


def _time_reading(frame: pl.LazyFrame, mapping: ColumnMapping) -> tuple[str, str]:
    """(kind, unit) of the time column, with 'auto' settled from its type and first values.

    kind is a time_format value (never 'auto'), or 'datetime' for a column that holds dates or datetimes;
    unit is an epoch unit when kind is 'epoch' (never 'auto' then), else the mapping's time_unit.
    """
    time_format, unit = mapping.time_format, mapping.time_unit
    if time_format not in ("auto", "epoch"):
        return time_format, unit  # row_order included: the column is then never read
    if time_format == "epoch" and unit != "auto":
        return "epoch", unit
    dtype = frame.collect_schema()[mapping.time]
    if time_format == "auto" and isinstance(dtype, pl.Datetime | pl.Date):
        return "datetime", unit
    head = frame.select(pl.col(mapping.time)).head(SNIFF_ROWS).collect().get_column(mapping.time).drop_nulls()
    numbers, whole = _numbers_in(head)
    decide = time_format == "auto" and unit == "auto"
    if numbers is None and decide:
        return "iso", unit
    largest = float(numbers.abs().max() or 0) if numbers is not None and numbers.len() else 0.0
    if decide and whole and largest < _EPOCH_FLOOR:
        return "position", unit
    return "epoch", unit if unit != "auto" else _epoch_unit(largest)


def _numbers_in(head: pl.Series) -> tuple[pl.Series | None, bool]:
    """(the numeric values of a sample as Float64, whether they are whole numbers); None for mostly text.

    A text column that is mostly numbers (scientific notation included) counts as numbers: its few other
    values are then reported as bad rows.
    """
    if head.dtype == pl.String:
        text = head.str.strip_chars()
        numeric = text.str.contains(_NUMBER)
        if text.len() == 0 or numeric.mean() < 0.5:  # type: ignore[operator]
            return None, False
        numbers = text.filter(numeric)
        return numbers.cast(pl.Float64), bool(numbers.str.contains(_WHOLE).all())
    return head.cast(pl.Float64), head.dtype.is_integer()


def _epoch_unit(largest: float) -> str:
    """The finest unit in which `largest` is at least 10**8 seconds (1973); seconds for smaller values."""
    return next((unit for unit, per_second in reversed(EPOCH_UNITS.items()) if largest >= _EPOCH_FLOOR * per_second), "s")


def resolve_time_format(sample: pl.DataFrame, mapping: ColumnMapping) -> tuple[ColumnMapping, bool]:
    """(mapping with 'auto' format and unit replaced by what the sample's time column holds, whether that is integers).

    Integer epochs or positions may then be parsed as Int64 by a reader directly, which is several
    times cheaper than text -> float; a sample lets the reader skip sniffing the whole file.
    """
    if mapping.time_format == "row_order" or mapping.time not in sample.columns:
        return mapping, False
    kind, unit = _time_reading(sample.lazy(), mapping)
    if kind == "datetime":  # a typed datetime column needs no format
        return mapping, False
    values = sample.get_column(mapping.time).drop_nulls()
    integers = kind in ("epoch", "position") and values.len() > 0 and (
        values.dtype.is_integer() or (values.dtype == pl.String and bool(values.str.contains(_WHOLE).all())))
    return mapping.model_copy(update={"time_format": kind, "time_unit": unit}), integers


def _time_value(column: str, kind: str, dtype: pl.DataType) -> pl.Expr:
    """The time column as read, before its range check: UTC datetimes, Int64 positions, or epoch numbers
    in their own unit (Int64 from integer columns, exact; Float64 otherwise, NaN as missing)."""
    raw = pl.col(column)
    if kind == "datetime":
        return _utc(raw, dtype)
    if kind == "iso":
        return raw.cast(pl.String).str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
    if "%" in kind:
        return raw.cast(pl.String).str.to_datetime(kind, strict=False, time_unit="us", time_zone="UTC")
    if kind == "position":
        return raw.cast(pl.Int64, strict=False)
    if dtype.is_integer():
        return raw.cast(pl.Int64, strict=False)
    # Float64 reads "881250949", "881250949.5" and "1.7e18"; epoch microseconds stay below 2**53, so exact.
    return raw.cast(pl.Float64, strict=False).fill_nan(None)


def _utc(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Dates and datetimes as UTC datetimes (us): aware ones converted, naive ones taken to be UTC already."""
    if isinstance(dtype, pl.Date):
        return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.time_zone is None:  # type: ignore[attr-defined]
        return raw.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return raw.dt.cast_time_unit("us").dt.convert_time_zone("UTC")


def _year_bounds(mapping: ColumnMapping, unit: str) -> tuple[int, int]:
    """The first and last tick of the mapping's years as epoch numbers in `unit`, clamped to Int64."""
    per_day = 86_400 * EPOCH_UNITS[unit]
    first_day = (date(mapping.min_year, 1, 1) - _EPOCH_DAY).days
    end_day = (date(mapping.max_year, 12, 31) - _EPOCH_DAY).days + 1  # the day after the last allowed one
    return max(first_day * per_day, _INT64_MIN), min(end_day * per_day - 1, _INT64_MAX)


def _epoch_datetime(value: pl.Expr, unit: str, integer: bool) -> pl.Expr:
    """Epoch numbers in `unit` as UTC datetimes (us): integers exactly (ns rounded down), floats rounded."""
    per_second = EPOCH_UNITS[unit]
    if not integer:
        return (value * (10**6 / per_second)).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    micros = value * (10**6 // per_second) if per_second <= 10**6 else value // (per_second // 10**6)
    return micros.cast(pl.Datetime("us", "UTC"))


def _time_column(mapping: ColumnMapping, kind: str, unit: str, dtype: pl.DataType) -> tuple[pl.Expr, list[pl.Expr]]:
    """(the parsed time column, its flags). A time outside the years becomes null like an unparsable one,
    so the cheap null check on the loaded table finds both, and only then do the flags tell which it was.

    Epoch numbers are compared with the years before they are scaled to microseconds, so that no value
    can overflow Int64 into a wrong but plausible-looking time.
    """
    value = _time_value(mapping.time, kind, dtype)
    flags = [value.is_null().alias(f"time is missing or not a valid {kind} value|{mapping.time}")]
    if kind == "position":
        return value, flags
    if kind == "epoch":
        in_years = value.is_between(*_year_bounds(mapping, unit))
        parsed, read_as = _epoch_datetime(value, unit, dtype.is_integer()), f" (read as epoch {unit})"
    else:
        in_years = value.dt.epoch("us").is_between(*_year_bounds(mapping, "us"))
        parsed, read_as = value, ""
    flags.append((value.is_not_null() & ~in_years).alias(
        f"time is outside the years {mapping.min_year}..{mapping.max_year}{read_as}|{mapping.time}"))
    return pl.when(in_years).then(parsed), flags


def _extra_expr(column: str, kind: ExtraType, dtype: pl.DataType) -> pl.Expr:
    raw = pl.col(column)
    if kind == "datetime":
        return _time_value(column, "datetime" if isinstance(dtype, pl.Datetime | pl.Date) else "iso", dtype)
    if kind == "bool" and dtype == pl.String:
        lowered = raw.str.strip_chars().str.to_lowercase()
        return pl.when(lowered.is_in(["true", "1", "yes"])).then(True).when(lowered.is_in(["false", "0", "no"])).then(False)
    if kind == "str":
        return raw.cast(pl.String)
    return raw.cast(_EXTRA_CASTS[kind], strict=False)


def _shared_columns(mapping: ColumnMapping) -> list[Problem]:
    """A Problem per source column mapped to more than one of user, time and action."""
    roles = {"user": mapping.user, "action": mapping.action} | ({} if mapping.time_format == "row_order" else {"time": mapping.time})
    by_column: dict[str, list[str]] = {}
    for role, column in roles.items():
        by_column.setdefault(column, []).append(role)
    return [Problem(f"is mapped as both the {' and the '.join(names)} column", column=column)
            for column, names in by_column.items() if len(names) > 1]


def resolve_positions(mapping: ColumnMapping, names: list[str]) -> ColumnMapping:
    """The mapping with column indexes (--map user=0,action=1: a whole number that names no column)
    replaced by the names of the columns at those positions, counted from 0; an index past the last
    column is left as it is, for the missing-column check to report."""
    def named(column: str) -> str:
        if column in names or not column.isdigit() or int(column) >= len(names):
            return column
        return names[int(column)]

    update: dict[str, Any] = {role: named(getattr(mapping, role)) for role in ("user", "time", "action")}
    update["extras"] = {named(column): kind for column, kind in mapping.extras.items()}
    if mapping.descriptions:
        update["descriptions"] = named(mapping.descriptions)
    return mapping.model_copy(update=update)


def _missing_columns(available: list[str], mapping: ColumnMapping) -> list[Problem]:
    wanted = {"user": mapping.user, "action": mapping.action}
    if mapping.time_format != "row_order":
        wanted["time"] = mapping.time
    wanted |= {f"extra {c}": c for c in mapping.extras}
    if mapping.descriptions:
        wanted["descriptions"] = mapping.descriptions
    last = f"0..{len(available) - 1}" if available else "none"
    return [Problem(f"the {role} column is missing" + (f" (index {column}; the columns are {last})" if column.isdigit() else ""),
                    column=column)
            for role, column in wanted.items() if column not in available]


def _is_id_type(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Null) or dtype.is_numeric() or isinstance(dtype, pl.Categorical | pl.Enum)


def _is_time_type(dtype: pl.DataType) -> bool:
    return _is_id_type(dtype) or isinstance(dtype, pl.Datetime | pl.Date)


def _is_plain_type(dtype: pl.DataType) -> bool:
    return not dtype.is_nested() and dtype not in (pl.Binary, pl.Object)


def _wrong_types(dtypes: pl.Schema, mapping: ColumnMapping) -> list[Problem]:
    """A Problem per mapped column whose type cannot hold its role (list ids, boolean times, struct actions).

    Typed sources (Parquet, JSON lines) can hold such columns; found from the schema alone, they are named
    with the type found and the type wanted, rather than left to fail inside a cast.
    """
    wanted = [(mapping.user, "the user column needs text or whole numbers", _is_id_type),
              (mapping.action, "the action column needs text or whole numbers", _is_id_type)]
    if mapping.time_format != "row_order":
        wanted.append((mapping.time, "the time column needs datetimes, epoch numbers or ISO-8601 text", _is_time_type))
    if mapping.descriptions:
        wanted.append((mapping.descriptions, "the description column needs text", _is_id_type))
    wanted += [(column, f"an {kind} extra needs plain values", _is_plain_type) for column, kind in mapping.extras.items()]
    return [Problem(f"holds {dtypes[column]}, but {need}", column=column) for column, need, fits in wanted if not fits(dtypes[column])]


def _checked_schema(lazy: pl.LazyFrame, mapping: ColumnMapping, source: str) -> tuple[ColumnMapping, pl.Schema]:
    """(the mapping with column indexes resolved, the frame's schema), once the mapping is known to fit it:
    one column per role, each present and of a usable type."""
    try:
        dtypes = lazy.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(source, exc) from exc
    mapping = resolve_positions(mapping, dtypes.names())
    shared = _shared_columns(mapping)
    if shared:
        raise DataError(f"{source}: the mapping uses one column for two roles", shared,
                        hint="Map user, time and action to three different columns, e.g. --map user=uid,time=ts,action=item.")
    missing = _missing_columns(dtypes.names(), mapping)
    if missing:
        raise DataError(f"{source}: columns are missing", missing,
                        hint=f"The file has columns {dtypes.names()}; map yours with --map user=...,time=...,action=... "
                             "or a TOML mapping, or force another --format.")
    wrong = _wrong_types(dtypes, mapping)
    if wrong:
        raise DataError(f"{source}: columns of the wrong type", wrong,
                        hint="Write ids as text or integers and times as datetimes, epoch numbers or ISO-8601 text "
                             "(cast the columns before exporting the file), or map other columns.")
    return mapping, dtypes


def _unreadable(source: str, exc: Exception) -> DataError:
    # The strict UTF-8 decoder of the CSV reader does not say where; the file then is read once more to tell
    # the line and the encoding it seems to be in (bad input only). `source` is the path for every file loader.
    if "invalid utf-8" in str(exc) and Path(source).is_file():
        located = find_not_utf8(Path(source))
        if located is not None:
            return located
    return DataError(f"{source}: could not be read as a table", [Problem(str(exc).strip().splitlines()[0])],
                     hint="Check the separator, the encoding (UTF-8) and that every row has the same columns.")


@dataclass(frozen=True)
class _Plan:
    """How a source table becomes an EventLog: the loaded columns and the flags that find bad rows, all as
    expressions over the source, so the same plan runs in memory (load) or streaming (scan, convert).

    Flags are named "<problem>|<source column>", true on bad rows. Extras' flags are computed with the
    columns, because a missing extra value is allowed and only the raw column tells "missing" from
    "unparsable"; the others only when the loaded columns show a problem (bad input only).
    """

    source: str
    lazy: pl.LazyFrame
    mapping: ColumnMapping
    schema: Schema
    columns: list[pl.Expr]
    core_flags: list[pl.Expr]
    extra_flags: list[pl.Expr]
    text: dict[str, tuple[pl.Expr, str]]  # loaded text column -> (its expression, its source column)

    def loaded(self) -> pl.LazyFrame:
        """The loaded columns with the extras' flags beside them."""
        return self.lazy.select(*self.columns, *self.extra_flags)

    def fact_exprs(self) -> list[pl.Expr]:
        """Aggregates over loaded() that tell whether any row is bad: all in one select, one pass."""
        lengths = {column: pl.col(column).str.len_bytes() for column in self.text}
        return [pl.len().alias("rows"),
                *(pl.col(c).null_count().alias(f"nulls {c}") for c in (USER, ACTION, self.schema.time)),
                *(lengths[c].min().alias(f"shortest {c}") for c in (USER, ACTION)),
                *(lengths[c].max().alias(f"longest {c}") for c in self.text),
                *(pl.col(f.meta.output_name()).sum().alias(f"count {f.meta.output_name()}") for f in self.extra_flags)]

    def raise_problems(self, facts: dict[str, Any]) -> None:
        """A DataError listing the bad rows (found in one more pass over the source) when `facts` show any."""
        flags = [f for f in self.extra_flags if facts[f"count {f.meta.output_name()}"]]
        if any(facts[f"nulls {c}"] for c in (USER, ACTION, self.schema.time)) or 0 in (facts[f"shortest {USER}"], facts[f"shortest {ACTION}"]):
            flags = self.core_flags + flags
        flags += [(expr.str.len_bytes() > MAX_TEXT_BYTES).alias(
            f"is longer than 1 MiB ({MAX_TEXT_BYTES:,} bytes), the limit for ids, actions and text|{source}")
            for loaded, (expr, source) in self.text.items() if (facts[f"longest {loaded}"] or 0) > MAX_TEXT_BYTES]
        problems = self._row_problems(flags)
        if problems:
            times = any(p.column == self.mapping.time for p in problems) and self.mapping.time_format != "row_order"
            raise DataError(f"{self.source}: {len(problems)} problem{'' if len(problems) == 1 else 's'} in the rows", problems,
                            hint="Fix or remove these rows (rows are counted from 1 after the header)" + (
                                ", or set how times are read: time_format, time_unit, min_year/max_year." if times else "."))
        if facts["rows"] == 0:
            raise DataError(f"{self.source}: the file has no events", hint="Check that this is the right file and that it has data rows.")

    def _row_problems(self, flags: list[pl.Expr]) -> list[Problem]:
        """One Problem per bad (row, column), rows counted from 1; at most _MAX_LISTED_ROWS per column."""
        if not flags:
            return []
        names = [f.meta.output_name() for f in flags]
        numbered = self.lazy.select(flags).with_row_index("_row")
        counts, *rows = self.collect([numbered.select(pl.col(names).sum()),
                                      *(numbered.filter(pl.col(n)).select("_row").head(_MAX_LISTED_ROWS) for n in names)])
        problems: list[Problem] = []
        for name, bad in zip(names, rows, strict=True):
            what, column = name.split("|", 1)
            problems.extend(Problem(what, row=int(r) + 1, column=column) for r in bad.get_column("_row").to_list())
            if counts.item(0, name) > _MAX_LISTED_ROWS:
                problems.append(Problem(f"{what}: {counts.item(0, name) - _MAX_LISTED_ROWS:,} more rows like this", column=column))
        return problems

    def collect(self, queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
        """The queries run one after the other on the streaming engine (run together, their shared source was
        cached whole: 2.4 GB for 100M CSV events); a read failure is a DataError about the source."""
        try:
            return [query.collect(engine="streaming") for query in queries]
        except pl.exceptions.PolarsError as exc:
            raise _unreadable(self.source, exc) from exc


def _planned(frame: pl.LazyFrame | pl.DataFrame, mapping: ColumnMapping, source: str) -> _Plan:
    """The plan for `frame` once its columns fit the mapping and the time reading is settled."""
    lazy = frame.lazy()
    mapping, dtypes = _checked_schema(lazy, mapping, source)
    try:
        kind, unit = _time_reading(lazy, mapping)
    except pl.exceptions.PolarsError as exc:
        raise _unreadable(source, exc) from exc
    time_name = POSITION if kind in ("position", "row_order") else TIMESTAMP
    user, action = _text_id(mapping.user, dtypes[mapping.user]), _text_id(mapping.action, dtypes[mapping.action])
    columns = [user.alias(USER), action.alias(ACTION)]
    text = {USER: (user, mapping.user), ACTION: (action, mapping.action)}
    core_flags = [
        (user.is_null() | (user.str.len_bytes() == 0)).alias(f"user id is missing, NaN or empty|{mapping.user}"),
        (action.is_null() | (action.str.len_bytes() == 0)).alias(f"action is missing, NaN or empty|{mapping.action}"),
    ]
    if kind == "row_order":
        columns.append(pl.int_range(pl.len()).over(user).cast(pl.Int64).alias(POSITION))
    else:
        parsed, time_flags = _time_column(mapping, kind, unit, dtypes[mapping.time])
        columns.append(parsed.alias(time_name))
        core_flags += time_flags
    extra_flags = []
    for column, extra_kind in mapping.extras.items():
        parsed = _extra_expr(column, extra_kind, dtypes[column])
        columns.append(parsed.alias(column))
        extra_flags.append((pl.col(column).is_not_null() & parsed.is_null()).alias(f"is not a valid {extra_kind}|{column}"))
        if extra_kind == "str":
            text[column] = (parsed, column)
    if mapping.descriptions:
        description = pl.col(mapping.descriptions).cast(pl.String)
        columns.append(description.alias(_DESCRIPTION))
        text[_DESCRIPTION] = (description, mapping.descriptions)
    schema = Schema(name=mapping.name, domain=mapping.domain, time=time_name, extras=dict(mapping.extras),
                    action_meaning=mapping.action_meaning, source=source)
    return _Plan(source, lazy, mapping, schema, columns, core_flags, extra_flags, text)


def event_log_from_frame(frame: pl.LazyFrame | pl.DataFrame, mapping: ColumnMapping, *, source: str,
                         descriptions: Mapping[str, str] | None = None,
                         attributes: Mapping[str, Sequence[str]] | None = None) -> EventLog:
    """Parse and check `frame` into an EventLog (timestamps in UTC, or positions).

    `descriptions` (action -> text) wins over the mapping's description column; `attributes` (action ->
    attribute ids) go into the vocabulary for the actions that occur.
    """
    plan = _planned(frame, mapping, source)
    table, = plan.collect([plan.loaded()])
    plan.raise_problems(table.select(plan.fact_exprs()).row(0, named=True))
    table = table.drop([f.meta.output_name() for f in plan.extra_flags])
    text = dict(descriptions or {})
    if mapping.descriptions and not descriptions:
        pairs = table.select(ACTION, _DESCRIPTION).unique(ACTION, keep="first")
        text = {a: d for a, d in pairs.iter_rows() if d}
    table = table.drop(_DESCRIPTION, strict=False)
    if not text and not attributes:  # the EventLog builds the vocabulary itself: one pass over the actions instead of two
        return EventLog(table, plan.schema)
    return EventLog(table, plan.schema, Vocabulary.from_actions(table.get_column(ACTION).unique().to_list(), text, attributes))


def lazy_event_log(frame: pl.LazyFrame, mapping: ColumnMapping, *, source: str) -> LazyEventLog:
    """`frame` checked as event_log_from_frame checks it, in streaming passes (memory grows with the number of
    actions, not of events), and left lazy: each use of the result reads the source again."""
    plan = _planned(frame, mapping, source)
    loaded = plan.loaded()
    # The distinct actions as a frame's unique rows: the streaming engine keeps only those (measured 150 MB on
    # 100M events), where an expression's unique() inside the aggregate select held 1.7 GB.
    queries = [loaded.select(*plan.fact_exprs()), loaded.select(ACTION).unique()]
    if mapping.descriptions:
        queries.append(loaded.group_by(ACTION).agg(pl.col(_DESCRIPTION).first()))
    facts, actions, *described = plan.collect(queries)
    row = facts.row(0, named=True)
    plan.raise_problems(row)
    text = {a: d for a, d in described[0].iter_rows() if d} if described else {}
    kept = [c for c in plan.columns if c.meta.output_name() != _DESCRIPTION]
    return LazyEventLog(plan.lazy.select(kept).select(plan.schema.columns), plan.schema,
                        Vocabulary.from_actions(actions.get_column(ACTION).to_list(), text), row["rows"])


def concat_logs(logs: list[EventLog], *, source: str) -> EventLog:
    """Stack logs of one schema (e.g. the train/valid/test files of one dataset); vocabularies merge."""
    if not logs:
        raise DataError(f"{source}: nothing to load", hint="Point at a file or a folder with data files.")
    schema = Schema.model_validate(logs[0].schema.model_dump() | {"source": source})
    frame = pl.concat([log.frame for log in logs], how="vertical")
    # The rows of EventLogs passed their checks, and the merged vocabulary holds every action of each.
    return EventLog.with_rows_checked(frame, schema, merged_vocabulary([log.vocabulary for log in logs]))


def merged_vocabulary(vocabularies: Sequence[Vocabulary]) -> Vocabulary:
    """Every action of the vocabularies, sorted; a later vocabulary's description or attributes win."""
    descriptions: dict[str, str] = {}
    attributes: dict[str, tuple[str, ...]] = {}
    for vocabulary in vocabularies:
        descriptions |= dict(vocabulary.descriptions)
        attributes |= dict(vocabulary.attributes)
    return Vocabulary.from_actions(descriptions, descriptions, attributes)


def with_extras(log: EventLog, columns: Mapping[str, tuple[pl.Expr, ExtraType]]) -> EventLog:
    """The log with more typed extras computed from its own columns (e.g. local hour from time + offset)."""
    extras = dict(log.schema.extras) | {name: kind for name, (_, kind) in columns.items()}
    schema = log.schema.model_dump() | {"extras": extras}
    frame = log.frame.with_columns([expr.alias(name) for name, (expr, _) in columns.items()])
    # model_validate re-runs the Schema checks (model_copy would skip them)
    return EventLog(frame, Schema.model_validate(schema), log.vocabulary)
