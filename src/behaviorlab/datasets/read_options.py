"""How a log is read: its format and the options of the readers that take some, as one typed record.

Every command that reads a log builds one from its flags (`--format`, `--map`, `--extra`, `--sep`,
`--no-header`, `--item-attributes`); a trained model keeps it in its metadata, so `evaluate` reads the
data again the way training read it. `load(path, **options.arguments())` reads with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import field_validator

from behaviorlab.config import StrictConfig
from behaviorlab.datasets.delimited import parse_separator
from behaviorlab.datasets.mapping import ColumnMapping
from behaviorlab.datasets.registry import get_format


class ReadOptions(StrictConfig):
    """format: a name of `FORMATS` (None: recognised from the path). mapping: the columns of a generic table
    (csv, jsonl, parquet; None: the default columns, and any format may be recognised). separator and header:
    delimited text (None: the separator is told from the first lines). item_attributes: the item-attribute file
    of a sequence file (None: the `*_item2attributes.json` beside it, if any)."""

    format: str | None = None
    mapping: ColumnMapping | None = None
    separator: str | None = None
    header: bool = True
    item_attributes: Path | None = None

    @field_validator("format")
    @classmethod
    def _known_format(cls, name: str | None) -> str | None:
        if name is not None:
            get_format(name)  # a ConfigError listing the formats, before any data is read
        return name

    @field_validator("separator")
    @classmethod
    def _one_character(cls, text: str | None) -> str | None:
        return None if text is None else parse_separator(text)  # also takes tab, space, comma, ...

    def given(self) -> bool:
        """Whether any option differs from the defaults (recognise the format, default columns)."""
        return self != ReadOptions()

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of `datasets.load` these options stand for."""
        return {"format": self.format, "mapping": self.mapping, "separator": self.separator, "header": self.header,
                "item_attributes": self.item_attributes}
