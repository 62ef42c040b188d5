"""What several command groups share: option types, a progress bar, a metrics table, JSON output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
from behaviorlab.progress import ProgressReporter


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


FormatOption = Annotated[str | None, typer.Option("--format", "-f", help="Force the data format (see `behaviorlab data formats`).")]
JsonOption = Annotated[Path | None, typer.Option("--json-out", callback=output_file,
                                                 help="Also write the results as JSON to this file.")]



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
