"""Separator sniffing and naming."""

import pytest

from behaviorlab.datasets.delimited import parse_separator, separator_flag, sniff_separator
from behaviorlab.errors import ConfigError


@pytest.mark.parametrize("separator", [",", "\t", ";", "|", " "])
def test_each_separator_is_told_from_its_lines(separator):
    lines = [separator.join(row) for row in (["user", "time", "action"], ["u1", "1700000000", "open"], ["u2", "1700000001", "close"])]
    assert sniff_separator(lines) == separator


def test_decimal_commas_do_not_outvote_the_header():
    assert sniff_separator(["user;time;value", "u1;5;1,5", "u2;6;2,5"]) == ";"


def test_one_column_or_ragged_lines_have_no_separator():
    assert sniff_separator(["action", "open", "close"]) is None


def test_flag_values():
    assert parse_separator("tab") == parse_separator("\\t") == "\t"
    assert parse_separator("space") == " " and parse_separator(";") == ";"
    assert separator_flag("\t") == "tab" and separator_flag(";") == "';'"
    with pytest.raises(ConfigError, match="single-byte"):
        parse_separator(";;")
