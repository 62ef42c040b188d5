"""Foursquare check-ins (TSMC 2014): the original headerless TSV or the prepared CSV (foursquare-nyc/).

Original columns: userId, venueId, venueCategoryId, venueCategory, latitude, longitude,
timezoneOffset (minutes), utcTimestamp ('Tue Apr 03 18:00:09 +0000 2012'). The prepared CSV names
them user_id, POI_id, POI_catid, POI_catname, latitude, longitude, timezone, UTC_time (+ trajectory_id).

action = venue category name; extras: item (venue id), latitude, longitude, utc_offset_min, and the
user's local time as local_hour (0-23) and weekday (Mon..Sun). The timestamp stays in UTC.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from behaviorlab.datasets.files import first_line, require_file
from behaviorlab.datasets.mapping import ColumnMapping, concat_logs, event_log_from_frame, with_extras
from behaviorlab.datasets.tabular import scan_text_table
from behaviorlab.errors import DataError
from behaviorlab.schema import TIMESTAMP, WEEKDAYS, EventLog
from behaviorlab.sequences import UTC_OFFSET_COLUMN

ORIGINAL_COLUMNS = ["user_id", "item", "category_id", "category", "latitude", "longitude", UTC_OFFSET_COLUMN, "utc_time"]
# prepared-CSV name -> original name
_PREPARED = {"POI_id": "item", "POI_catid": "category_id", "POI_catname": "category", "timezone": UTC_OFFSET_COLUMN,
             "UTC_time": "utc_time"}
UTC_FORMAT = "%a %b %d %H:%M:%S %z %Y"


def _is_prepared_csv(path: Path) -> bool:
    header = first_line(path).split(",")
    return path.suffix == ".csv" and {"user_id", "POI_catname", "UTC_time"} <= set(header)


def _is_original_tsv(path: Path) -> bool:
    fields = first_line(path).split("\t")
    return path.suffix in (".txt", ".tsv") and len(fields) == 8 and fields[7].strip().endswith(tuple("0123456789")) \
        and "+0000" in fields[7]


def _is_checkin_file(path: Path) -> bool:
    return path.is_file() and (_is_prepared_csv(path) or _is_original_tsv(path))


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [p for p in sorted(path.iterdir()) if _is_checkin_file(p)]
    return [path] if path.is_file() else []


def is_foursquare(path: Path) -> bool:
    return _is_checkin_file(path) or (path.is_dir() and bool(_files(path)))


def _scan(path: Path) -> pl.LazyFrame:
    if _is_original_tsv(path):
        return pl.scan_csv(require_file(path, "Check-in file"), separator="\t", has_header=False, infer_schema=False,
                           quote_char=None, new_columns=ORIGINAL_COLUMNS, encoding="utf8-lossy")
    frame = scan_text_table(path, ",")
    names = frame.collect_schema().names()
    return frame.rename({k: v for k, v in _PREPARED.items() if k in names})


def load_file(path: Path) -> EventLog:
    frame = _scan(path)
    extras = {"item": "str", "latitude": "float", "longitude": "float", UTC_OFFSET_COLUMN: "int"}
    if "trajectory_id" in frame.collect_schema().names():
        extras["trajectory_id"] = "str"
    mapping = ColumnMapping(user="user_id", time="utc_time", time_format=UTC_FORMAT, action="category", extras=extras,
                            name="foursquare", domain="mobility", action_meaning="venue category")
    log = event_log_from_frame(frame, mapping, source=str(path))
    local = pl.col(TIMESTAMP) + pl.duration(minutes=pl.col(UTC_OFFSET_COLUMN))
    return with_extras(log, {
        "local_hour": (local.dt.hour().cast(pl.Int64), "int"),
        "weekday": (local.dt.weekday().replace_strict(dict(enumerate(WEEKDAYS, 1)), return_dtype=pl.String), "str"),
    })


def load_foursquare(path: Path) -> EventLog:
    """A file, or a folder of check-in files (all are loaded and stacked)."""
    files = _files(path)
    if not files:
        raise DataError(f"No Foursquare check-in files in {path}",
                        hint="Expect the TSMC2014 .txt (tab separated, no header) or CSVs with POI_catname and UTC_time.")
    return load_file(files[0]) if len(files) == 1 else concat_logs([load_file(f) for f in files], source=str(path))
