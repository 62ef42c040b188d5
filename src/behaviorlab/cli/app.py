"""The Typer application and the shared consoles. Command modules add their commands to `app`."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="behaviorlab",
    help="Model user behavior with LLMs: load logs, generate synthetic behavior, train and evaluate predictors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# soft_wrap: text is left to the terminal to wrap, so a path in a message stays one copyable string
# (tables still fit the terminal's width)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
