"""ReadOptions: the record of how a log is read, checked when built and kept as JSON by trained models."""

from __future__ import annotations

import pytest

from behaviorlab.datasets import ColumnMapping, ReadOptions, load
from behaviorlab.errors import ConfigError


def test_separator_names_become_characters_and_bad_ones_are_config_errors() -> None:
    assert ReadOptions(separator="tab").separator == "\t" and ReadOptions(separator="pipe").separator == "|"
    with pytest.raises(ConfigError, match="single-byte"):
        ReadOptions(separator=";;")


def test_an_unknown_format_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="Unknown format 'cvs'") as caught:
        ReadOptions(format="cvs")
    assert "sequence-lines" in (caught.value.hint or "")


def test_unknown_keys_are_refused_and_json_round_trips() -> None:
    with pytest.raises(ValueError, match="sep"):
        ReadOptions.model_validate({"sep": ";"})
    options = ReadOptions(format="csv", mapping=ColumnMapping(user="0", time="1", action="2"), separator=";", header=False)
    assert ReadOptions.model_validate_json(options.model_dump_json()) == options
    assert options.given() and not ReadOptions().given()


def test_the_arguments_read_a_file_as_load_does(tmp_path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("u1|3|open\nu1|4|close\nu2|5|open\n")
    options = ReadOptions(mapping=ColumnMapping(user="0", time="1", action="2"), separator="pipe", header=False)
    log = load(path, **options.arguments())
    assert log.n_users == 2 and log.n_events == 3
    assert log.frame.equals(load(path, mapping=options.mapping, separator="|", header=False).frame)
