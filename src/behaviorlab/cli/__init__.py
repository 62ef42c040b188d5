"""Thin command line: parse arguments, call the library, turn errors into messages and exit codes.

Each command group lives in its own module and registers on `app`; heavy libraries (torch, the LLM
runtime) are imported inside the commands so that `behaviorlab --help` stays instant.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from behaviorlab.cli import data as _data  # noqa: F401  (registers commands)
from behaviorlab.cli import demo as _demo  # noqa: F401  (registers commands)
from behaviorlab.cli import evaluation as _evaluation  # noqa: F401  (registers commands)
from behaviorlab.cli import generate as _generate  # noqa: F401  (registers commands)
from behaviorlab.cli import llm as _llm  # noqa: F401  (registers commands)
from behaviorlab.cli import models as _models  # noqa: F401  (registers commands)
from behaviorlab.cli import serve as _serve  # noqa: F401  (registers commands)
from behaviorlab.cli import tasks as _tasks  # noqa: F401  (registers commands)
from behaviorlab.cli.app import app, err_console
from behaviorlab.errors import BehaviorLabError, Interrupted

INTERNAL_ERROR = 70
RESUME_ADVICE = "Interrupted. Re-run the same command to resume where it stopped."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `behaviorlab` script; returns the process exit code."""
    try:
        result = app(args=argv, prog_name="behaviorlab", standalone_mode=False)
    except Interrupted as exc:  # a command's own advice on what was kept
        err_console.print(str(exc), highlight=False, markup=False)
        return exc.exit_code
    except BehaviorLabError as exc:
        headline, _, detail = str(exc).partition("\n")  # the message's own lines, the problems, the hint
        err_console.print(f"[bold red]error:[/] {escape(headline)}", highlight=False)
        if detail:
            err_console.print(detail, highlight=False, markup=False)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(RESUME_ADVICE)
        return Interrupted.exit_code
    except TyperException as exc:  # usage errors (typer ships its own click: plain click's classes never match)
        exc.show(file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback reaches a user
        if os.environ.get("BEHAVIORLAB_DEBUG"):
            traceback.print_exc()
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}\n"
            "  -> This is a bug in behaviorlab. Re-run with BEHAVIORLAB_DEBUG=1 for the traceback and report it.",
            highlight=False,
        )
        return INTERNAL_ERROR
    if result == Interrupted.exit_code:  # typer turns a Ctrl-C it sees into a silent return of 130
        err_console.print(RESUME_ADVICE)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry: exit with `main`'s code."""
    sys.exit(main())
