"""Typed configuration read from TOML files and flags; unknown keys are rejected."""

from __future__ import annotations

import codecs
import difflib
import re
import shlex
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


def guess_encoding(data: bytes) -> tuple[str, str]:
    """(iconv name, description) of the encoding that text `data`, which is not UTF-8, most likely uses.

    A guess from the bytes alone: byte-order marks first; then NUL bytes, which ASCII text has in every
    other byte in UTF-16 (which half tells the byte order); then bytes 0x80-0x9F, which are printable in
    Windows-1252 (curly quotes, the euro sign) but control codes in Latin-1. It lives here, the lowest
    module that reads text files, so that config files and data files are described alike.
    """
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: FF FE 00 00 starts with FF FE
        return "UTF-32", "UTF-32 (with a byte-order mark)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16", "UTF-16 (with a byte-order mark)"
    if b"\0" in data:
        little_endian = data[1::2].count(0) >= data[0::2].count(0)
        return ("UTF-16LE", "UTF-16LE (no byte-order mark)") if little_endian else ("UTF-16BE", "UTF-16BE (no byte-order mark)")
    if re.search(rb"[\x80-\x9f]", data):
        return "CP1252", "Windows-1252 (cp1252)"
    return "LATIN1", "Latin-1 (ISO-8859-1)"


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read forever
        raise ConfigError(f"Config file {path} is not a regular file", hint="Pass a TOML file to --config.")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist", hint="Check the path passed to --config.") from None
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}", hint="Check its permissions.") from None
    try:
        return tomllib.loads(_toml_text(path, data))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}", hint="Fix the TOML syntax.") from exc


def _toml_text(path: Path, data: bytes) -> str:
    """TOML files are UTF-8 by definition; anything else is named, with the command that converts it."""
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:  # UTF-16 without a byte-order mark decodes as UTF-8 full of NULs
        name, description = guess_encoding(data)
        raise ConfigError(f"Config file {path} is not UTF-8 text: it looks like {description}",
                          hint=f"{conversion_command(path, name)}, and pass the result.")
    return text


def conversion_command(path: Path, encoding: str) -> str:
    """How to turn `path`, a text file in `encoding` (an iconv name), into UTF-8 beside it."""
    converted = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return f"Convert it to UTF-8: iconv -f {encoding} -t UTF-8 {shlex.quote(str(path))} > {shlex.quote(str(converted))}"


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
