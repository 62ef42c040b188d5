"""The named formats, how each is recognised from a path, and `load`, which picks one.

Recognition looks only at names, extensions, folder contents and first lines, never at whole files.
Specific formats are checked before the generic tables, so a SmartThings CSV is not read as a plain CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from behaviorlab.datasets import foursquare, kasteren, movielens, smartthings, tabular
from behaviorlab.datasets.files import refuse_special_file
from behaviorlab.datasets.mapping import ColumnMapping
from behaviorlab.datasets.parquet import parquet_parts
from behaviorlab.errors import ConfigError, DataError
from behaviorlab.schema import EventLog


@dataclass(frozen=True)
class DatasetFormat:
    """One readable format. Generic formats (`uses_mapping`) take a ColumnMapping; the others know their columns."""

    name: str
    description: str
    recognises: Callable[[Path], bool]
    load: Callable[..., EventLog]
    uses_mapping: bool = False


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
    DatasetFormat("parquet", "Parquet: a behaviorlab event log (lossless) or any table with a column mapping; "
                  "a file or a partitioned folder (*.parquet parts, hive key=value/ sub-folders)",
                  lambda p: _suffix(".parquet", ".pq")(p) or (p.is_dir() and bool(parquet_parts(p))),
                  tabular.load_parquet, uses_mapping=True),
    DatasetFormat("jsonl", "JSON lines, one event per line, with a column mapping",
                  _suffix(*tabular.JSONL_SUFFIXES), tabular.load_jsonl, uses_mapping=True),
    DatasetFormat("csv", "CSV/TSV with a header, with a column mapping (default columns user_id,timestamp,action)",
                  _suffix(*tabular.CSV_SUFFIXES), tabular.load_csv, uses_mapping=True),
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
    for fmt in FORMATS:
        if fmt.recognises(path):
            return fmt
    raise DataError(f"Could not recognise the format of {path}",
                    hint=f"Formats tried: {', '.join(format_names())}. Force one with --format NAME "
                         "(generic tables also need --map user=...,time=...,action=...).")


def load(path: str | Path, format: str | None = None, mapping: ColumnMapping | None = None) -> EventLog:
    """Load any supported dataset as an EventLog; `format` overrides detection.

    When a detected format fails to read the data, the error says which format was guessed and how
    to force another, so a wrong guess is easy to correct.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist", hint="Check the path.")
    refuse_special_file(path)  # also for a forced format: a loader that takes folders would call a FIFO an empty one
    fmt = get_format(format) if format else detect_format(path)
    if mapping is not None and not fmt.uses_mapping:
        raise ConfigError(f"The '{fmt.name}' format knows its columns and takes no column mapping",
                          hint="Drop --map/--config, or force a generic format (csv, jsonl, parquet) with --format.")
    try:
        return fmt.load(path, mapping) if fmt.uses_mapping else fmt.load(path)
    except DataError as exc:
        if format:
            raise
        guessed = (f"{exc.hint} " if exc.hint else "") + (
            f"(The format was detected as '{fmt.name}'; if that is wrong, force one with --format "
            f"{{{','.join(format_names())}}}.)")
        raise type(exc)(exc.message, exc.problems, hint=guessed) from exc
