"""What several command groups share: option types, how a log is read, a progress bar, a metrics table, JSON output."""

from __future__ import annotations

import functools
import inspect
import json
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from behaviorlab.atomic import check_output_path, write_text_atomic
from behaviorlab.cli.app import console
from behaviorlab.config import load_config
from behaviorlab.datasets import ColumnMapping, ReadOptions, load, parse_mapping_flag, scan
from behaviorlab.errors import ConfigError
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import EventLog, LazyEventLog


# Option callbacks: an unwritable output fails while the command line is read, before any data is loaded
# or any model trained (the write itself would only fail at the end).
def output_file(path: Path | None) -> Path | None:
    return None if path is None else check_output_path(path)


def output_folder(path: Path | None) -> Path | None:
    return None if path is None else check_output_path(path, directory=True)


def data_source(ctx: typer.Context, path: Path | None) -> Path | None:
    """`--data` callback: an existing path as given; a dataset name (`behaviorlab data list`) becomes its local
    copy, downloaded and checked first when absent (an unverified one needs `behaviorlab data fetch --trust-unverified`)."""
    if path is None or path.exists() or ctx.resilient_parsing:  # resilient: shell completion, never a download
        return path
    from behaviorlab.datasets.fetch import resolve_data

    with progress_bar(f"Fetching {path}", status=lambda info: str(info.get("file", ""))) as report:
        return resolve_data(path, progress=report)


# How a log is read: every command that reads one takes these options as one ReadFlags (`@with_read_flags`).
FormatOption = Annotated[str | None, typer.Option("--format", "-f", help="Force the data format (see `behaviorlab data formats`).")]
MapOption = Annotated[str | None, typer.Option("--map", help="Column mapping for generic tables: user=COL,time=COL,action=COL "
                                               "(COL a name, or an index with --no-header), optionally with time_format "
                                               "(auto, iso, epoch, position, row_order or a %-pattern), time_unit=s|ms|us|ns "
                                               "(default: from the magnitude), min_year=1970, max_year=2100.")]
ExtraOption = Annotated[list[str] | None, typer.Option("--extra", help="Keep a column as an extra: NAME:TYPE (str,int,float,bool,datetime). Repeatable.")]
SepOption = Annotated[str | None, typer.Option("--sep", help="Separator of delimited text: a character, or tab, space, comma, "
                                               "semicolon, pipe (default: told from the first lines).")]
NoHeaderOption = Annotated[bool, typer.Option("--no-header", help="Delimited text without a header row: columns are named 0, 1, ... "
                                              "and --map names them by index (user=0,time=2,action=1).")]
ItemAttributesOption = Annotated[Path | None, typer.Option("--item-attributes", help=(
    "Item-attribute JSON of a sequence file (item -> attributes; default: the *_item2attributes.json beside it)."))]
JsonOption = Annotated[Path | None, typer.Option("--json-out", callback=output_file,
                                                 help="Also write the results as JSON to this file.")]


Command = TypeVar("Command", bound=Callable[..., Any])


def option_group(record: type, name: str) -> Callable[[Command], Command]:
    """A decorator that gives a typer command the options declared once as the fields of the dataclass `record`
    (Annotated option types with defaults): the command takes them as one keyword argument `name` (a `record`),
    and its --help lists them after its own options. Typer has no option groups; this is one."""
    types = get_type_hints(record, include_extras=True)  # the Annotated option types, not their names
    grouped = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=types[f.name])
               for f in fields(record)]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)  # typer reads the evaluated Annotated types
        own = [p for key, p in signature.parameters.items() if key != name]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = record(**{f.name: kwargs.pop(f.name) for f in fields(record)})
            return command(*args, **{name: values}, **kwargs)

        parameters = [*own, *grouped]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class ReadFlags:
    """The read options of one command line, as `with_read_flags` hands them to a command that reads a log."""

    format_name: FormatOption = None
    map_flag: MapOption = None
    extra: ExtraOption = None
    sep: SepOption = None
    no_header: NoHeaderOption = False
    item_attributes: ItemAttributesOption = None

    def options(self, mapping_file: Path | None = None) -> ReadOptions:
        """The ReadOptions these flags stand for (`mapping_file`: a TOML file of ColumnMapping keys, which
        --map and --extra override)."""
        return ReadOptions(format=self.format_name, mapping=_mapping(self.map_flag, self.extra, mapping_file),
                           separator=self.sep, header=not self.no_header, item_attributes=self.item_attributes)

    def command_line(self) -> str:
        """The flags as given, for a printed command that repeats them ('' when none was given)."""
        flags = [("--format", self.format_name), ("--map", self.map_flag), *(("--extra", e) for e in self.extra or ()),
                 ("--sep", self.sep), ("--item-attributes", self.item_attributes)]
        text = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in flags if value is not None)
        return text + (" --no-header" if self.no_header else "")


with_read_flags = option_group(ReadFlags, "read_flags")


READ_KEY = "read"  # where a saved model's metadata keeps the ReadOptions of its training data


def _mapping(map_flag: str | None, extras: list[str] | None, mapping_file: Path | None) -> ColumnMapping | None:
    """None when no mapping was given, so formats that know their columns can be recognised."""
    if map_flag is None and not extras and mapping_file is None:
        return None
    overrides: dict[str, object] = dict(parse_mapping_flag(map_flag or ""))
    if extras:
        pairs = [e.partition(":") for e in extras]
        bad = [e for e, (name, sep, kind) in zip(extras, pairs, strict=True) if not sep or not name or not kind]
        if bad:
            raise ConfigError(f"Invalid --extra {bad}", hint="Write --extra NAME:TYPE, e.g. --extra rating:float.")
        overrides["extras"] = {name: kind for name, _, kind in pairs}
    return load_config(ColumnMapping, mapping_file, overrides)


def load_log(data: Path, read: ReadOptions) -> EventLog:
    """The log at `data` read with `read`: what every command that reads a log calls (typed errors as raised)."""
    return load(data, **read.arguments())


def scan_log(data: Path, read: ReadOptions) -> LazyEventLog:
    """`load_log` left lazy, for commands that only stream the log (data inspect, data convert)."""
    return scan(data, **read.arguments())


def trained_read(read: ReadOptions, metadata: Mapping[str, Any]) -> ReadOptions:
    """The read options given to a command that scores a saved model, else those its training data was read
    with (models saved before the record existed kept only the format)."""
    if read.given():
        return read
    stored = metadata.get(READ_KEY)
    return ReadOptions.model_validate(stored) if stored else ReadOptions(format=metadata.get("format"))


def engine_name(name: str) -> str:
    from behaviorlab.generate.engine import ENGINES

    if name not in ENGINES:
        raise typer.BadParameter(f"{name!r} is not one of: {', '.join(ENGINES)}")
    return name


EngineOption = Annotated[str, typer.Option("--engine", callback=engine_name, help=(
    "Where the LLM requests and experiment cells are computed: local (this process) or ray (Ray actors and "
    "tasks: the cluster in $RAY_ADDRESS, else a local Ray session; needs the ray extra). Same output for the same seed."))]


Status = Callable[[Mapping[str, float | str]], str]


@contextmanager
def progress_bars(*, status: Status | None = None, stream: Console = console,
                  transient: bool = False) -> Iterator[Callable[..., ProgressReporter]]:
    """One live display of bars: `add(title, total=None, first_status="")` starts a bar and returns its
    ProgressReporter. A report's figures go through `status(info)` into the text after the bar; without
    `status` they are printed as a line each (epoch figures)."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=stream, transient=transient) as bar:
        def add(title: str, total: int | None = None, first_status: str = "") -> ProgressReporter:
            task = bar.add_task(title, total=total, status=first_status)

            def report(done: int, total: int, info: Mapping[str, float | str] | None = None) -> None:
                if status is not None:
                    bar.update(task, completed=done, total=total, status=status(info or {}))
                    return
                bar.update(task, completed=done, total=total)
                if info:
                    bar.console.print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items()))

            return report

        yield add


@contextmanager
def progress_bar(title: str, *, status: Status | None = None, stream: Console = console, transient: bool = True,
                 total: int | None = None, first_status: str = "") -> Iterator[ProgressReporter]:
    """A single bar of `progress_bars`, gone when it ends unless `transient` is False."""
    with progress_bars(status=status, stream=stream, transient=transient) as add:
        yield add(title, total, first_status)


def metrics_table(title: str, metrics: Mapping[str, float]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:,.0f}" if key == "examples" else f"{value:.4f}")
    return table


def comparison_table(title: str, rows: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per method, one column per metric (floats to 4 places, other values as written)."""
    table = Table(title=title)
    metrics = list(dict.fromkeys(k for row in rows.values() for k in row))
    table.add_column("method")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for method, row in rows.items():
        table.add_row(method, *(f"{row[m]:.4f}" if isinstance(row.get(m), float) else str(row.get(m, "")) for m in metrics))
    return table


def write_json(path: Path | None, payload: Mapping[str, Any]) -> None:
    if path is not None:
        write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        console.print(f"Wrote {path}")
