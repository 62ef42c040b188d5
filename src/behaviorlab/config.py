"""Typed configuration read from TOML files and flags; unknown keys are rejected."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from behaviorlab.errors import ConfigError, Problem

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_config(model: type[ConfigT], values: Mapping[str, Any], *, where: str = "configuration") -> ConfigT:
    """Validate a mapping into `model`, collecting every problem into one ConfigError."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        problems = [
            Problem(error["msg"], column=".".join(str(part) for part in error["loc"]) or None) for error in exc.errors()
        ]
        raise ConfigError(f"Invalid {where}:\n" + "\n".join(f"  - {p}" for p in problems),
                          hint="Fix or remove the listed keys; see the README for the accepted keys.") from exc


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist", hint="Check the path passed to --config.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}", hint="Fix the TOML syntax.") from exc


def load_config(model: type[ConfigT], path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                *, section: str | None = None) -> ConfigT:
    """Merge a TOML file (optionally one [section] of it) with flag overrides; flags win when not None."""
    values: dict[str, Any] = {}
    if path is not None:
        values = read_toml(path)
        if section is not None:
            values = values.get(section, {})
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return parse_config(model, values, where=f"configuration{f' [{section}]' if section else ''}")
