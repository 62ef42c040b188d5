"""`behaviorlab data ...`: inspect, convert and list the formats of behavior logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import FormatOption, output_file
from behaviorlab.config import load_config
from behaviorlab.datasets import FORMATS, ColumnMapping, detect_format, load, parse_mapping_flag, scan, write_event_log
from behaviorlab.datasets.delimited import parse_separator
from behaviorlab.errors import ConfigError
from behaviorlab.schema import ACTION, SPLIT, USER, EventLog, LazyEventLog
from behaviorlab.sequences import count_exact_duplicates, drop_exact_duplicates

data_app = typer.Typer(help="Load, inspect and convert behavior logs.", no_args_is_help=True)
app.add_typer(data_app, name="data")

MapOption = Annotated[str | None, typer.Option("--map", help="Column mapping for generic tables: user=COL,time=COL,action=COL, "
                                               "optionally with time_format (auto, iso, epoch, position, row_order or a %-pattern), "
                                               "time_unit=s|ms|us|ns (default: from the magnitude), min_year=1970, max_year=2100.")]
ExtraOption = Annotated[list[str] | None, typer.Option("--extra", help="Keep a column as an extra: NAME:TYPE (str,int,float,bool,datetime). Repeatable.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file with the column mapping (keys of ColumnMapping).")]
SepOption = Annotated[str | None, typer.Option("--sep", help="Separator of delimited text: a character, or tab, space, comma, "
                                               "semicolon, pipe (default: told from the first lines).")]
NoHeaderOption = Annotated[bool, typer.Option("--no-header", help="Delimited text without a header row: columns are named 0, 1, ... "
                                              "and --map names them by index (user=0,time=2,action=1).")]


def _read(path: Path, format_name: str | None, mapping: ColumnMapping | None, sep: str | None, no_header: bool, *,
          lazy: bool = False) -> EventLog | LazyEventLog:
    """The log in memory, or left lazy (streamed from the file by each use: bounded memory for any size)."""
    read = scan if lazy else load
    return read(path, format=format_name, mapping=mapping, separator=None if sep is None else parse_separator(sep),
                header=not no_header)


def _mapping(map_flag: str | None, extras: list[str] | None, config: Path | None) -> ColumnMapping | None:
    """None when no mapping was given, so formats that know their columns can be auto-detected."""
    if map_flag is None and not extras and config is None:
        return None
    overrides: dict[str, object] = dict(parse_mapping_flag(map_flag or ""))
    if extras:
        pairs = [e.partition(":") for e in extras]
        bad = [e for e, (name, sep, kind) in zip(extras, pairs, strict=True) if not sep or not name or not kind]
        if bad:
            raise ConfigError(f"Invalid --extra {bad}", hint="Write --extra NAME:TYPE, e.g. --extra rating:float.")
        overrides["extras"] = {name: kind for name, _, kind in pairs}
    return load_config(ColumnMapping, config, overrides)


@data_app.command("inspect")
def inspect(path: Path, format_name: FormatOption = None, map_flag: MapOption = None, extra: ExtraOption = None,
            config: ConfigOption = None, sep: SepOption = None, no_header: NoHeaderOption = False) -> None:
    """Users, events, actions, time span, events per user and the top actions of a log (streamed: memory grows
    with users and actions, not with events)."""
    log = _read(path, format_name, _mapping(map_flag, extra, config), sep, no_header, lazy=True)
    print_inspection(log, f"{path} ({format_name or detect_format(path).name})")


def print_inspection(log: EventLog | LazyEventLog, title: str) -> None:
    """The facts table and the top actions of `log`."""
    summary = log.summary(top=10)
    duplicates = count_exact_duplicates(log)
    facts = Table(title=title, show_header=False)
    facts.add_column("what", style="bold")
    facts.add_column("value")
    facts.add_row("schema", f"{log.schema.name} ({log.schema.domain}), one action = {log.schema.action_meaning}")
    facts.add_row("users", f"{summary.n_users:,}")
    facts.add_row("events", f"{summary.n_events:,}")
    facts.add_row("actions", f"{summary.n_actions:,} (vocabulary {len(log.vocabulary):,})")
    facts.add_row(f"time span ({summary.time_kind})", f"{summary.first} .. {summary.last}")
    facts.add_row("events per user", "  ".join(f"{k} {v:,.0f}" for k, v in summary.events_per_user_quantiles.items()))
    facts.add_row("extra columns", ", ".join(f"{k}:{v}" for k, v in log.schema.extras.items()) or "-")
    facts.add_row("exact duplicate events", f"{duplicates:,}")
    if SPLIT in log.frame.lazy().collect_schema():  # a dataset's published split (SmartThings): sizes per part
        parts = log.frame.lazy().group_by(SPLIT).agg(pl.col(USER).n_unique().alias("users"), pl.len().alias("events")).collect()
        parts = parts.sort(pl.col(SPLIT).replace_strict({"train": 0, "valid": 1, "test": 2}, default=3, return_dtype=pl.Int64))
        facts.add_row("published split", "  ".join(f"{s}: {u:,} sequences / {e:,} events" for s, u, e in parts.iter_rows()))
    console.print(facts)

    top = Table(title="Top actions")
    top.add_column("action")
    top.add_column("events", justify="right")
    top.add_column("description")
    for action, count in summary.top_actions:
        top.add_row(action, f"{count:,}", log.vocabulary.describe(action))
    console.print(top)


@data_app.command("convert")
def convert(path: Path, out: Path, format_name: FormatOption = None, map_flag: MapOption = None, extra: ExtraOption = None,
            config: ConfigOption = None, sep: SepOption = None, no_header: NoHeaderOption = False,
            drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help="Remove exact duplicate events first.")] = False) -> None:
    """Write a log as Parquet with its schema and vocabulary (reads back losslessly)."""
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"The output {out} must end in .parquet", hint="Name the output like events.parquet.")
    output_file(out)
    # Streamed from the input into the Parquet file in bounded memory; dropping duplicates needs the log in memory.
    log = _read(path, format_name, _mapping(map_flag, extra, config), sep, no_header, lazy=not drop_duplicates)
    if isinstance(log, EventLog) and drop_duplicates:
        log, report = drop_exact_duplicates(log)
        console.print(str(report))
    write_event_log(log, out)
    # The same count as `data inspect`: actions that occur; a vocabulary may also name actions that do not.
    # Counted in bounded memory: users per bucket of users, actions as a frame's unique rows (n_unique() held every value).
    written = scan(out)
    n_users = written.count_users()
    n_actions = written.frame.select(ACTION).unique().select(pl.len()).collect(engine="streaming").item()
    n_known = len(log.vocabulary)
    vocabulary = f" (vocabulary {n_known:,})" if n_known != n_actions else ""
    console.print(f"Wrote {out}: {n_users:,} users, {log.n_events:,} events, {n_actions:,} actions{vocabulary}.")


@data_app.command("formats")
def formats() -> None:
    """List the formats `data inspect` and `data convert` read."""
    table = Table(title="Formats (checked in this order when --format is not given)")
    table.add_column("name", style="bold")
    table.add_column("description")
    for fmt in FORMATS:
        table.add_row(fmt.name, fmt.description + (" [needs --map unless columns are user_id,timestamp,action]" if fmt.uses_mapping else ""))
    console.print(table)
