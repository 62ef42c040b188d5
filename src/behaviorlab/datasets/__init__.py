"""Readers for real behavior-data formats; each returns an EventLog whose vocabulary holds real names.

`load(path)` recognises the format (or takes `format=`); `FORMATS` lists them; `ReadOptions` records how a
log is read (format, column mapping, separator, header, item attributes). Parquet written by
`write_event_log` reads back losslessly. User attributes (MovieLens) come from `load_user_table`.
"""

from behaviorlab.datasets.mapping import ColumnMapping, parse_mapping_flag
from behaviorlab.datasets.movielens import load_user_table
from behaviorlab.datasets.parquet import read_event_log, write_event_log
from behaviorlab.datasets.read_options import ReadOptions
from behaviorlab.datasets.registry import (
    FORMATS,
    DatasetFormat,
    detect_format,
    format_names,
    get_format,
    load,
    scan,
)

__all__ = [
    "FORMATS",
    "ColumnMapping",
    "DatasetFormat",
    "ReadOptions",
    "detect_format",
    "format_names",
    "get_format",
    "load",
    "load_user_table",
    "parse_mapping_flag",
    "read_event_log",
    "scan",
    "write_event_log",
]
