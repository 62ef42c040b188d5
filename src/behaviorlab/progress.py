"""How long operations report progress without printing: the library calls, the CLI draws."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class ProgressReporter(Protocol):
    """Called after each unit of work: `done` of `total` units, with optional live figures."""

    def __call__(self, done: int, total: int, info: Mapping[str, float | str] | None = None) -> None: ...


def no_progress(done: int, total: int, info: Mapping[str, float | str] | None = None) -> None:
    """The default reporter: library calls stay silent unless a caller asks for progress."""
