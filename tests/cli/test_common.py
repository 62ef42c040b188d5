"""The one progress-bar helper every command uses."""

from __future__ import annotations

import io

from rich.console import Console

from behaviorlab.cli.common import progress_bar, progress_bars


def _console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=120, force_terminal=False), text


def test_figures_are_printed_as_lines_without_a_status() -> None:
    console, text = _console()
    with progress_bar("training", stream=console) as report:
        report(1, 2, {"epoch": 1, "loss": 0.5})
        report(2, 2)
    assert "epoch 1  loss 0.5000" in [line.strip() for line in text.getvalue().splitlines()]  # a line of its own


def test_a_status_shows_the_figures_after_the_bar_instead() -> None:
    console, text = _console()
    with progress_bars(status=lambda info: f"cell {info.get('cell', '-')}", stream=console) as add:
        first, second = add("one", 2, "starting"), add("two", 1)
        first(1, 2, {"cell": "a|b"})
        second(1, 1, {"cell": "c|d"})
    lines = text.getvalue().splitlines()
    assert any("one" in line and "cell a|b" in line for line in lines)  # on the bar's own line
    assert any("two" in line and "1/1" in line and "cell c|d" in line for line in lines)
    assert "cell c|d" not in [line.strip() for line in lines]  # never a line of figures
