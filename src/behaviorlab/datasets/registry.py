"""The named formats, how each is recognised from a path, and `load`, which picks one.

Recognition looks only at names, extensions, folder contents and first lines, never at whole files.
Specific formats are checked before the generic tables, so a SmartThings CSV is not read as a plain CSV,
and the sequence files (numbers separated by spaces, no header) before delimited text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from behaviorlab.datasets import foursquare, kasteren, movielens, sequence_files, smartthings, tabular
from behaviorlab.datasets.files import refuse_special_file
from behaviorlab.datasets.mapping import ColumnMapping
from behaviorlab.datasets.parquet import parquet_parts
from behaviorlab.errors import ConfigError, DataError
from behaviorlab.schema import EventLog, LazyEventLog


@dataclass(frozen=True)
class DatasetFormat:
    """One readable format. Generic formats (`uses_mapping`) take a ColumnMapping; the others know their columns.
    Delimited text also takes a separator and whether there is a header; sequence files an item-attribute file."""

    name: str
    description: str
    recognises: Callable[[Path], bool]
    load: Callable[..., EventLog]
    uses_mapping: bool = False
    delimited: bool = False
    item_attributes: bool = False
    scan: Callable[..., LazyEventLog] | None = None  # a streaming reader, for formats that have one (else load(...).lazy())


def _suffix(*suffixes: str) -> Callable[[Path], bool]:
    return lambda path: path.is_file() and path.suffix.lower() in suffixes


FORMATS: tuple[DatasetFormat, ...] = (
    DatasetFormat("smartthings-csv", "SmartThings CSV: train/valid/test.csv (sequence_id,position,weekday,hour_bin,device,device_control)",
                  lambda p: smartthings.is_smartthings_csv(p) or (p.is_dir() and any(
                      smartthings.is_smartthings_csv(p / f"{s}.csv") for s in smartthings.SPLITS)),
                  smartthings.load_csv),
    DatasetFormat("smartthings-pickle", "SmartSense original: {trn,vld,test}_instance_<L>.pkl + dictionary.py (safe loading)",
                  smartthings.is_smartthings_pickle, smartthings.load_pickles),
    DatasetFormat("recbole", "RecBole atomic files: .inter (+ .item descriptions, .user attributes)",
                  movielens.is_recbole, movielens.load_recbole),
    DatasetFormat("movielens", "Raw MovieLens: u.data (+ u.item titles and genres, u.user attributes)",
                  movielens.is_raw_movielens, movielens.load_raw_movielens),
    DatasetFormat("foursquare", "Foursquare TSMC 2014 check-ins: original .txt (tab, no header) or CSV with POI_catname, UTC_time",
                  foursquare.is_foursquare, foursquare.load_foursquare),
    DatasetFormat("kasteren", "Kasteren home sensors: houseX.sensors, .activities, .sensor_names, .activity_names",
                  kasteren.is_kasteren, kasteren.load_kasteren),
    DatasetFormat("sasrec-lines", "Sequence file, one interaction per line: 'user item', each user's lines in time order (SASRec); "
                  "position as time",
                  sequence_files.recognises("sasrec-lines"), partial(sequence_files.load_sequence_file, layout="sasrec-lines"),
                  item_attributes=True),
    DatasetFormat("sequence-lines", "Sequence file, one user per line: 'user item item ...' in time order (S3-Rec, CL4SRec, "
                  "DuoRec), + NAME_item2attributes.json beside it; position as time",
                  sequence_files.recognises("sequence-lines"), partial(sequence_files.load_sequence_file, layout="sequence-lines"),
                  item_attributes=True),
    DatasetFormat("parquet", "Parquet: a behaviorlab event log (lossless) or any table with a column mapping; "
                  "a file or a partitioned folder (*.parquet parts, hive key=value/ sub-folders)",
                  lambda p: _suffix(".parquet", ".pq")(p) or (p.is_dir() and bool(parquet_parts(p))),
                  tabular.load_parquet, uses_mapping=True, scan=tabular.scan_parquet_log),
    DatasetFormat("jsonl", "JSON lines, one event per line, with a column mapping",
                  _suffix(*tabular.JSONL_SUFFIXES), tabular.load_jsonl, uses_mapping=True),
    DatasetFormat("csv", "Delimited text (separator , tab ; | or space, sniffed or --sep; a header or --no-header), with a "
                  "column mapping by name or index (default columns user_id,timestamp,action)",
                  _suffix(*tabular.CSV_SUFFIXES), tabular.load_csv, uses_mapping=True, delimited=True, scan=tabular.scan_csv),
)
_BY_NAME = {f.name: f for f in FORMATS}


def format_names() -> list[str]:
    return [f.name for f in FORMATS]


def get_format(name: str) -> DatasetFormat:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"Unknown format {name!r}", hint=f"Use one of: {', '.join(format_names())}.") from None


def detect_format(path: str | Path) -> DatasetFormat:
    """The first format (in FORMATS order) that recognises the path."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist", hint="Check the path.")
    refuse_special_file(path)  # the recognisers read first lines: a FIFO would block them
    if sequence_files.sniff_layout(path).ambiguous:
        raise DataError(f"{path} could be either sequence layout: every line is 'user item' and no user occurs twice "
                        "in its first lines", hint="Say which with --format sasrec-lines (one interaction per line) or "
                                                   "--format sequence-lines (one user per line, here with one item each).")
    for fmt in FORMATS:
        if fmt.recognises(path):
            return fmt
    raise DataError(f"Could not recognise the format of {path}",
                    hint=f"Formats tried: {', '.join(format_names())}. Force one with --format NAME "
                         "(generic tables also need --map user=...,time=...,action=...).")


def load(path: str | Path, format: str | None = None, mapping: ColumnMapping | None = None, *,
         separator: str | None = None, header: bool = True, item_attributes: str | Path | None = None) -> EventLog:
    """Load any supported dataset as an EventLog; `format` overrides detection.

    `separator` and `header` apply to delimited text (the separator is told from the first lines when not
    given); `item_attributes` to sequence files (default: the `*_item2attributes.json` beside the file).
    When a detected format fails to read the data, the error says which format was guessed and how
    to force another, so a wrong guess is easy to correct.
    """
    return _read(path, format, mapping, separator, header, item_attributes, lazy=False)  # type: ignore[return-value]


def scan(path: str | Path, format: str | None = None, mapping: ColumnMapping | None = None, *,
         separator: str | None = None, header: bool = True, item_attributes: str | Path | None = None) -> LazyEventLog:
    """`load`, left lazy for logs larger than memory: Parquet (files and partitioned folders) and delimited text
    are checked in streaming passes and stay on disk; the other formats are loaded, then handed over lazily."""
    return _read(path, format, mapping, separator, header, item_attributes, lazy=True)  # type: ignore[return-value]


def _read(path: str | Path, format: str | None, mapping: ColumnMapping | None, separator: str | None, header: bool,
          item_attributes: str | Path | None, *, lazy: bool) -> EventLog | LazyEventLog:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist", hint="Check the path.")
    refuse_special_file(path)  # also for a forced format: a loader that takes folders would call a FIFO an empty one
    fmt = get_format(format) if format else detect_format(path)
    _refuse_options_for(fmt, mapping, separator, header, item_attributes)
    options: dict[str, object] = {}
    if fmt.uses_mapping:
        options["mapping"] = mapping
    if fmt.delimited:
        options |= {"separator": separator, "header": header}
    if fmt.item_attributes:
        options["item_attributes"] = Path(item_attributes) if item_attributes is not None else None
    try:
        if not lazy:
            return fmt.load(path, **options)
        return fmt.scan(path, **options) if fmt.scan else fmt.load(path, **options).lazy()
    except DataError as exc:
        if format:
            raise
        guessed = (f"{exc.hint} " if exc.hint else "") + (
            f"(The format was detected as '{fmt.name}'; if that is wrong, force one with --format "
            f"{{{','.join(format_names())}}}.)")
        raise type(exc)(exc.message, exc.problems, hint=guessed) from exc


def _refuse_options_for(fmt: DatasetFormat, mapping: ColumnMapping | None, separator: str | None, header: bool,
                        item_attributes: str | Path | None) -> None:
    """One ConfigError naming every given option the format does not take, and the formats that take it."""
    given = [("column mapping (--map, --extra)", mapping is not None, fmt.uses_mapping, "generic tables: csv, jsonl, parquet"),
             ("separator (--sep)", separator is not None, fmt.delimited, "delimited text: csv"),
             ("--no-header", not header, fmt.delimited, "delimited text: csv"),
             ("item-attribute file", item_attributes is not None, fmt.item_attributes, "sasrec-lines, sequence-lines")]
    refused = [f"{what} (for {where})" for what, present, accepted, where in given if present and not accepted]
    if refused:
        raise ConfigError(f"The '{fmt.name}' format takes no {'; no '.join(refused)}",
                          hint="Drop those options, or force a format that takes them with --format.")
