"""`behaviorlab data ...`: inspect, convert and list the formats of behavior logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import (
    ExtraOption,
    FormatOption,
    ItemAttributesOption,
    MapOption,
    NoHeaderOption,
    SepOption,
    load_log,
    output_file,
    read_options,
)
from behaviorlab.datasets import FORMATS, detect_format, write_event_log
from behaviorlab.errors import ConfigError
from behaviorlab.schema import ACTION, SPLIT, USER, EventLog
from behaviorlab.sequences import drop_exact_duplicates

data_app = typer.Typer(help="Load, inspect and convert behavior logs.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file with the column mapping (keys of ColumnMapping).")]


@data_app.command("inspect")
def inspect(path: Path, format_name: FormatOption = None, map_flag: MapOption = None, extra: ExtraOption = None,
            config: ConfigOption = None, sep: SepOption = None, no_header: NoHeaderOption = False,
            item_attributes: ItemAttributesOption = None) -> None:
    """Users, events, actions, time span, events per user and the top actions of a log."""
    log = load_log(path, read_options(format_name, map_flag, extra, sep, no_header, item_attributes, config))
    print_inspection(log, f"{path} ({format_name or detect_format(path).name})")


def print_inspection(log: EventLog, title: str) -> None:
    """The facts table and the top actions of `log`."""
    summary = log.summary(top=10)
    _, duplicates = drop_exact_duplicates(log)
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
    facts.add_row("exact duplicate events", f"{duplicates.events_removed:,}")
    if SPLIT in log.frame.columns:  # a dataset's published split (SmartThings): sizes per part
        parts = log.frame.group_by(SPLIT).agg(pl.col(USER).n_unique().alias("users"), pl.len().alias("events"))
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
            item_attributes: ItemAttributesOption = None,
            drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help="Remove exact duplicate events first.")] = False) -> None:
    """Write a log as Parquet with its schema and vocabulary (reads back losslessly)."""
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"The output {out} must end in .parquet", hint="Name the output like events.parquet.")
    output_file(out)
    log = load_log(path, read_options(format_name, map_flag, extra, sep, no_header, item_attributes, config))
    if drop_duplicates:
        log, report = drop_exact_duplicates(log)
        console.print(str(report))
    write_event_log(log, out)
    # The same count as `data inspect`: actions that occur; a vocabulary may also name actions that do not.
    n_actions, n_known = log.frame.get_column(ACTION).n_unique(), len(log.vocabulary)
    vocabulary = f" (vocabulary {n_known:,})" if n_known != n_actions else ""
    console.print(f"Wrote {out}: {log.n_users:,} users, {log.n_events:,} events, {n_actions:,} actions{vocabulary}.")


@data_app.command("formats")
def formats() -> None:
    """List the formats `data inspect` and `data convert` read."""
    table = Table(title="Formats (checked in this order when --format is not given)")
    table.add_column("name", style="bold")
    table.add_column("description")
    for fmt in FORMATS:
        table.add_row(fmt.name, fmt.description + (" [needs --map unless columns are user_id,timestamp,action]" if fmt.uses_mapping else ""))
    console.print(table)
