"""Delimited text: which separator a file uses, told from its first lines, and how to name one.

A separator is taken when it splits every sampled line, the header included, into the same number
(at least two) of fields. The header matters: a `;` file with decimal commas (`1,5`) splits each data
row on ',' too, but not its header. Candidates are tried in a fixed order (tab, comma, semicolon,
pipe, space), since a text field holds spaces far more often than tabs.
"""

from __future__ import annotations

import csv

from behaviorlab.errors import ConfigError

SEPARATORS = ("\t", ",", ";", "|", " ")
_NAMES = {"\t": "tab", " ": "space"}
_WORDS = {"tab": "\t", "\\t": "\t", "space": " ", "comma": ",", "semicolon": ";", "pipe": "|"}


def parse_separator(text: str) -> str:
    """One separator character from a flag value: itself, or tab / \\t / space / comma / semicolon / pipe."""
    separator = _WORDS.get(text.lower(), text)
    if len(separator) != 1 or separator in "\r\n\"" or len(separator.encode()) != 1:
        raise ConfigError(f"Invalid separator {text!r}: it must be one single-byte character",
                          hint="Write e.g. --sep ';', --sep '|', --sep tab or --sep space.")
    return separator


def separator_name(separator: str) -> str:
    """How messages show a separator: 'tab', 'space' or the quoted character."""
    return _NAMES.get(separator, repr(separator))


def separator_flag(separator: str) -> str:
    """The --sep value that selects `separator`, as a shell would take it."""
    return _NAMES.get(separator, f"'{separator}'")


def field_counts(lines: list[str], separator: str) -> list[int]:
    """The number of fields of each line, split as a CSV reader splits them (quotes honoured)."""
    return [len(row) for row in csv.reader(lines, delimiter=separator)]


def sniff_separator(lines: list[str]) -> str | None:
    """The first of SEPARATORS that splits every line into the same number (>= 2) of fields; None when
    none does (a one-column file, ragged lines)."""
    lines = [line for line in lines if line.strip()]
    for separator in SEPARATORS:
        counts = set(field_counts(lines, separator))
        if len(counts) == 1 and counts.pop() >= 2:
            return separator
    return None


def head_lines(head: bytes, complete: bool) -> list[str]:
    """The lines of the start of a file; the last one is left out unless `complete` (it may be cut)."""
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    return lines if complete or len(lines) < 2 else lines[:-1]
