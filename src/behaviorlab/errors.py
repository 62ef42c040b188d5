"""The exception hierarchy. Every message says what went wrong and what to do next.

The library raises these; only the CLI turns them into printed messages and exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    message: str
    row: int | None = None  # 1-based data row (the header is not counted), as a spreadsheet user counts
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class BehaviorLabError(Exception):
    """Base class: `hint` tells the user what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message


class ConfigError(BehaviorLabError):
    """A configuration file or flag is invalid (unknown key, wrong type, bad value)."""

    exit_code = 2


class DataError(BehaviorLabError):
    """Input data is unusable. Carries every problem found, not just the first."""

    exit_code = 3
    max_listed = 20

    def __init__(self, message: str, problems: list[Problem] | None = None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        lines = [self.message]
        for problem in self.problems[: self.max_listed]:
            lines.append(f"  - {problem}")
        if len(self.problems) > self.max_listed:
            lines.append(f"  ... and {len(self.problems) - self.max_listed} more problems")
        if self.hint:
            lines.append(f"  -> {self.hint}")
        return "\n".join(lines)


class UnsafeFileError(DataError):
    """A file tried to do something a data file must not (e.g. a pickle that calls functions)."""


class DatasetNotAvailableError(DataError):
    """A named dataset is not on this machine and could not be downloaded; the hint names the file and where it goes."""


class ChecksumError(DataError):
    """A downloaded or extracted file does not have its recorded size or SHA-256 (it has been removed)."""


class UnverifiedFileError(DataError):
    """A downloaded file has no recorded SHA-256 to check it against; it is kept aside until the user trusts it."""


class LLMError(BehaviorLabError):
    """An LLM backend could not be set up or used."""

    exit_code = 4


class ModelNotAvailableError(LLMError):
    """The requested LLM weights are not on this machine and cannot be fetched."""


class GenerationError(BehaviorLabError):
    """A generation run cannot proceed (not a single failed completion: those are recorded)."""

    exit_code = 5


class ModelError(BehaviorLabError):
    """A prediction model cannot be trained, loaded or used as asked."""

    exit_code = 6


class NotFittedError(ModelError):
    """A model asked to predict, score or save before it has learned anything (one message for all)."""

    def __init__(self, model: str) -> None:
        super().__init__(f"The {model} model is not fitted yet",
                         hint="Call fit() first (or a `train` command), or load a saved model.")


class EvaluationError(BehaviorLabError):
    """An evaluation cannot be computed from the given inputs."""

    exit_code = 7


class OutputError(BehaviorLabError):
    """An output path cannot be written (a directory where a file goes, a missing or read-only folder)."""

    exit_code = 8


class Interrupted(BehaviorLabError):
    """The user stopped a long operation (Ctrl-C); the message says what was kept and how to continue."""

    exit_code = 130  # 128 + SIGINT, as shells report it
