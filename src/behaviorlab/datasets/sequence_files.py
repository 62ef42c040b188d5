"""The two sequence-file layouts of sequential recommendation, with no header and no times:

- `sasrec-lines`: `user item` per line, one interaction per line, each user's lines in time order
  (SASRec's data/*.txt).
- `sequence-lines`: `user item item ...` per line, one user per line, items in time order (S3-Rec,
  CL4SRec, DuoRec and their successors), optionally with `<name>_item2attributes.json` beside it:
  `{"item": [attribute, ...]}` (brand and category ids), read into the vocabulary's attributes.

Fields are separated by whitespace. The files hold only order, so the time column is `position`: an
event's index among its user's events, from 0. A folder holding `<name>.txt` and
`<name>_item2attributes.json` loads as that sequence file.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from behaviorlab.datasets.files import read_utf8_text, require_file, require_utf8_head
from behaviorlab.datasets.mapping import SNIFF_ROWS, ColumnMapping, event_log_from_frame
from behaviorlab.errors import DataError, Problem
from behaviorlab.schema import ACTION, POSITION, USER, EventLog

Layout = Literal["sasrec-lines", "sequence-lines"]
ATTRIBUTES_SUFFIX = "_item2attributes.json"
# Suffixes of other formats' files: a sequence file is never looked for in them.
_OTHER_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".inter", ".item", ".user", ".pkl", ".py")
_LINE = "_line"
_MAX_LISTED = 50


@dataclass(frozen=True)
class Sniffed:
    """What the first lines of a file say about its layout: one of the two, or None; `ambiguous` when
    both fit (every line `user item` and no user twice) and only the user can tell."""

    layout: Layout | None
    ambiguous: bool = False


def sniff_layout(path: Path) -> Sniffed:
    """The layout the first SNIFF_ROWS lines show. Only whole-number ids separated by single spaces are
    recognised without --format: a table of numbers without a header looks the same otherwise.

    Every line with 2 fields and some user on two lines: sasrec-lines. Lines of varying length, with no
    user twice: sequence-lines. Other numeric files (a fixed number of fields above 2, or users repeated
    in long lines) are tables without a header, left to the delimited-text reader.
    """
    if not path.is_file() or path.suffix.lower() in _OTHER_SUFFIXES or path.name.endswith(ATTRIBUTES_SUFFIX):
        return Sniffed(None)
    try:
        with open(path, "rb") as handle:
            lines = [line.decode("utf-8").rstrip("\r\n") for line in itertools.islice(handle, SNIFF_ROWS)]
    except (OSError, UnicodeDecodeError):
        return Sniffed(None)
    rows = [line.split(" ") for line in lines if line.strip()]
    if not rows or any(len(row) < 2 or not all(field.isdigit() for field in row) for row in rows):
        return Sniffed(None)
    widths = {len(row) for row in rows}
    users_repeat = len({row[0] for row in rows}) < len(rows)
    if widths == {2}:
        return Sniffed("sasrec-lines") if users_repeat else Sniffed(None, ambiguous=True)
    if len(widths) > 1 and not users_repeat:
        return Sniffed("sequence-lines")
    return Sniffed(None)


def sequence_folder_file(path: Path) -> Path | None:
    """In a folder with `<name>_item2attributes.json` files, the one `<name>.txt` beside them (None otherwise)."""
    if not path.is_dir():
        return None
    candidates = [path / (side.name.removesuffix(ATTRIBUTES_SUFFIX) + ".txt") for side in path.glob(f"*{ATTRIBUTES_SUFFIX}")]
    found = [c for c in candidates if c.is_file()]
    return found[0] if len(found) == 1 else None


def recognises(layout: Layout) -> Callable[[Path], bool]:
    """The recogniser of one layout, for a file or a folder holding one."""

    def check(path: Path) -> bool:
        file = sequence_folder_file(path) or path
        return sniff_layout(file).layout == layout

    return check


def attributes_beside(path: Path) -> Path | None:
    """`<stem>_item2attributes.json` beside the file, else the only `*_item2attributes.json` there."""
    own = path.with_name(path.stem + ATTRIBUTES_SUFFIX)
    if own.is_file():
        return own
    others = sorted(path.parent.glob(f"*{ATTRIBUTES_SUFFIX}"))
    return others[0] if len(others) == 1 else None


def read_item_attributes(path: Path) -> dict[str, tuple[str, ...]]:
    """`{"item": [attribute, ...]}` as item -> attribute ids (text); every malformed entry is reported."""
    try:
        payload = json.loads(read_utf8_text(path, "Item-attribute file"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON", [Problem(f"line {exc.lineno}, column {exc.colno}: {exc.msg}")],
                        hint='Write one object mapping each item to its attribute ids, e.g. {"4": [1, 2, 3]}.') from None
    if not isinstance(payload, dict):
        raise DataError(f"{path} holds a JSON {type(payload).__name__}, not an object",
                        hint='Write one object mapping each item to its attribute ids, e.g. {"4": [1, 2, 3]}.')
    bad = [Problem(f"item {item!r}: expected a list of ids, got {value!r}"[:200]) for item, value in payload.items()
           if not isinstance(value, list) or not all(isinstance(v, int | str) and not isinstance(v, bool) for v in value)]
    if bad:
        raise DataError(f"{path}: {len(bad)} items without a list of attribute ids", bad[:_MAX_LISTED],
                        hint='Each item maps to a list of attribute ids, e.g. {"4": [1, 2, 3]}.')
    return {str(item): tuple(str(v) for v in value) for item, value in payload.items()}


def _lines(path: Path) -> pl.DataFrame:
    """Each non-empty line's whitespace-separated fields as a list, with its 1-based line number.

    The reader takes each whole line as one field (a separator byte text never holds, quoting off)."""
    require_utf8_head(path)
    lines = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None, new_columns=["text"],
                        schema={"text": pl.String}, encoding="utf8")
    return (lines.with_row_index(_LINE, offset=1)
            .with_columns(pl.col("text").str.extract_all(r"\S+").alias("fields"))
            .filter(pl.col("fields").list.len() > 0)
            .drop("text"))


def _refuse(path: Path, bad: pl.DataFrame, what: str, hint: str) -> None:
    if bad.height:
        problems = [Problem(what, row=int(line)) for line in bad.get_column(_LINE).head(_MAX_LISTED).to_list()]
        if bad.height > _MAX_LISTED:
            problems.append(Problem(f"{bad.height - _MAX_LISTED:,} more lines like this"))
        raise DataError(f"{path}: {bad.height:,} lines do not fit the layout", problems, hint=hint)


def _events(path: Path, layout: Layout) -> pl.DataFrame:
    """user_id, action and position per event, in file order."""
    lines = _lines(path)
    width = pl.col("fields").list.len()
    if layout == "sasrec-lines":
        _refuse(path, lines.filter(width != 2), "expected 'user item'",
                "Each line holds one interaction, 'user item'. A line per user with all its items is "
                "--format sequence-lines.")
        events = lines.select(pl.col("fields").list.get(0).alias(USER), pl.col("fields").list.get(1).alias(ACTION))
        return events.with_columns(pl.int_range(pl.len()).over(USER).cast(pl.Int64).alias(POSITION))
    _refuse(path, lines.filter(width < 2), "expected 'user item item ...', a user with at least one item",
            "Each line is a user id and that user's items in time order; remove the lines without items.")
    users = lines.select(pl.col("fields").list.get(0).alias(USER), _LINE)
    repeated = users.filter(pl.col(USER).is_duplicated())
    _refuse(path, repeated, "a user already listed on another line",
            "Each user has one line in this layout: merge the user's lines in time order. "
            "One interaction per line is --format sasrec-lines.")
    return (lines.select(pl.col("fields").list.get(0).alias(USER), pl.col("fields").list.slice(1).alias(ACTION))
            .with_columns(pl.int_ranges(pl.col(ACTION).list.len()).alias(POSITION))
            .explode(ACTION, POSITION)
            .with_columns(pl.col(POSITION).cast(pl.Int64)))


def load_sequence_file(path: Path, layout: Layout, item_attributes: Path | None = None) -> EventLog:
    """A sequence file (or a folder holding one with its attribute file) as an EventLog of items.

    Attributes come from `item_attributes` when given, else from the side file found beside the file."""
    path = sequence_folder_file(path) or path
    require_file(path, "Sequence file")
    side = item_attributes or attributes_beside(path)
    attributes = read_item_attributes(side) if side is not None else None
    mapping = ColumnMapping(time=POSITION, time_format="position", name=path.stem, domain="items", action_meaning="item")
    return event_log_from_frame(_events(path, layout), mapping, source=str(path), attributes=attributes)
