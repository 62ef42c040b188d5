"""`behaviorlab data ...`: inspect, convert and list the formats of behavior logs; fetch and list public datasets by name."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from behaviorlab.cli.app import app, console
from behaviorlab.cli.common import (
    ReadFlags,
    data_source,
    output_file,
    progress_bar,
    scan_log,
    with_read_flags,
)
from behaviorlab.datasets import FORMATS, detect_format, scan, write_event_log
from behaviorlab.errors import ConfigError
from behaviorlab.schema import ACTION, SPLIT, USER, EventLog, LazyEventLog
from behaviorlab.sequences import count_exact_duplicates, grouped_by_user

data_app = typer.Typer(help="Load, inspect and convert behavior logs.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataArgument = Annotated[Path, typer.Argument(callback=data_source, help="A log file or folder, or a dataset name (`behaviorlab data list`).")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file with the column mapping (keys of ColumnMapping).")]


@data_app.command("inspect")
@with_read_flags
def inspect(path: DataArgument, config: ConfigOption = None, *, read_flags: ReadFlags) -> None:
    """Users, events, actions, time span, events per user and the top actions of a log (streamed: memory grows
    with users and actions, not with events)."""
    log = scan_log(path, read_flags.options(config))
    print_inspection(log, f"{path} ({read_flags.format_name or detect_format(path).name})")


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
@with_read_flags
def convert(path: DataArgument, out: Path, config: ConfigOption = None,
            drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help="Remove exact duplicate events first.")] = False,
            *, read_flags: ReadFlags) -> None:
    """Write a log as Parquet with its schema and vocabulary (reads back losslessly; the events grouped by user)."""
    if out.suffix.lower() != ".parquet":
        raise ConfigError(f"The output {out} must end in .parquet", hint="Name the output like events.parquet.")
    output_file(out)
    # Streamed from the input into the Parquet file, grouped by user (the file then loads faster; see
    # grouped_by_user), one bucket of users (about GROUP_BUCKET_ROWS events) sorted at a time; a larger log is
    # split into its buckets in a folder beside the output first, removed afterwards.
    log = scan_log(path, read_flags.options(config))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.buckets-") as spill:
        log, report = grouped_by_user(log, Path(spill), drop_duplicates=drop_duplicates)
        if report is not None:
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


@data_app.command("list")
def list_datasets() -> None:
    """The public datasets `data fetch` downloads by name (and every --data accepts), and whether each is here."""
    from behaviorlab.datasets.catalog import catalog
    from behaviorlab.datasets.fetch import data_root, local_copy

    table = Table(title=f"Datasets by name (local copies in {data_root()}; BEHAVIORLAB_DATA moves them)",
                  caption="unverified: no published SHA-256; `data fetch NAME --trust-unverified` accepts the download")
    table.add_column("name", style="bold", no_wrap=True)
    for column in ("format", "download", "checked by", "here", "description"):
        table.add_column(column)
    for entry in catalog().values():
        size = f"{entry.size / 1e6:,.1f} MB" if entry.size is not None else "size unknown"
        checked = "SHA-256" if entry.verified else "unverified"
        table.add_row(entry.name, entry.format, size, checked, "yes" if local_copy(entry) else "no", entry.description)
    console.print(table)


@data_app.command("fetch")
def fetch_dataset(
    name: Annotated[str, typer.Argument(help="A dataset name (`behaviorlab data list`).")],
    trust_unverified: Annotated[bool, typer.Option("--trust-unverified", help=(
        "Accept files that have no recorded SHA-256 (their digests are printed); without it they are kept aside "
        "and refused."))] = False,
) -> None:
    """Download a public dataset by name into $BEHAVIORLAB_DATA, resuming and checking each file; a copy already
    there is used as is. Without network the error says which file to save where."""
    from behaviorlab.datasets.catalog import get_dataset
    from behaviorlab.datasets.fetch import fetch, local_copy

    entry = get_dataset(name)
    path = local_copy(entry)
    if path is not None:
        console.print(f"{entry.name} is already in {path}; used as is.")
    else:
        with progress_bar(f"Fetching {entry.name}", status=lambda info: str(info.get("file", ""))) as report:
            fetched = fetch(entry, trust_unverified=trust_unverified, progress=report)
        for file in fetched.files:
            how = {"sha256": "SHA-256 matches", "size": "size matches, no SHA-256 recorded",
                   "nothing": "not checked: no size or SHA-256 recorded"}[file.checked]
            console.print(f"{file.path.name}: {file.size:,} bytes, {how} (sha256 {file.sha256})", highlight=False)
        path = fetched.path
    console.print(f"License: {entry.license}\nCite: {entry.citation}", highlight=False)
    console.print(f"Use it as --data {entry.name}, or read it with `behaviorlab data inspect {path}`.", highlight=False)
