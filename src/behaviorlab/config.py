"""Typed configuration read from TOML files and flags; unknown keys are rejected."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from behaviorlab.errors import ConfigError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base for every configuration model: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_config(model: type[ConfigT], values: Mapping[str, Any], *, where: str = "configuration") -> ConfigT:
    """Validate a mapping into `model`, collecting every problem into one ConfigError."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        errors = exc.errors()
        lines = [_describe(error, _keys_at(model, error["loc"][:-1])) for error in errors]
        # the accepted keys of the table the first problem is in ([generate] keys for generate.foo)
        where_keys = next((error["loc"][:-1] for error in errors if error["type"] == "extra_forbidden"), ())
        table = f"[{'.'.join(str(part) for part in where_keys)}]" if where_keys else model.__name__
        raise ConfigError(f"Invalid {where}:\n" + "\n".join(f"  - {line}" for line in lines),
                          hint=f"Fix or remove the listed keys. {table} accepts: {', '.join(_keys_at(model, where_keys))}.") from exc


def _keys_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys of the (nested) config table at `path`, e.g. ("generate", "llm") -> LLMConfig's fields."""
    for part in path:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(error: Any, accepted: list[str]) -> str:
    """One pydantic error as a line about a config key, with a spelling suggestion for an unknown key."""
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), accepted, n=1)
        return f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
    return f"key '{key}': {error['msg']}" if key else error["msg"]


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
    source = f" from {path}{f' [{section}]' if section else ''}" if path is not None else ""
    return parse_config(model, values, where=f"configuration{source}")
