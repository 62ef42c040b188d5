"""The two sequence-file layouts, their detection and the item-attribute side file, on files built here."""

import json

import pytest

from behaviorlab.datasets import detect_format, load, read_event_log, write_event_log
from behaviorlab.errors import ConfigError, DataError
from behaviorlab.schema import Vocabulary


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_sequence_lines_positions_and_attributes_from_the_side_file(tmp_path):
    path = _write(tmp_path / "Shop.txt", "1 10 11 12\n2 11 13\n3 12 10 11 13 14\n")
    (tmp_path / "Shop_item2attributes.json").write_text(json.dumps({"10": [1, 2], "11": [3], "99": [4]}))
    assert detect_format(path).name == "sequence-lines"
    log = load(path)
    assert (log.n_users, log.n_events, log.schema.time, log.schema.domain) == (3, 10, "position", "items")
    assert log.action_sequences()["3"] == ["12", "10", "11", "13", "14"]
    assert log.frame.filter(log.frame["user_id"] == "2")["position"].to_list() == [0, 1]
    assert log.vocabulary.attributes_of("10") == ("1", "2")
    assert log.vocabulary.attributes_of("14") == ()
    assert "99" not in log.vocabulary.attributes  # an item the log does not have is left out
    assert load(tmp_path).n_events == 10  # the folder holding the file and its side file


def test_attributes_survive_parquet_and_vocabulary_json(tmp_path):
    path = _write(tmp_path / "s.txt", "1 10 11\n2 11 10 12\n")
    log = load(path, item_attributes=_write(tmp_path / "attrs.json", '{"10": ["b1", "c2"]}'))
    back = read_event_log(write_event_log(log, tmp_path / "s.parquet"))
    assert back.vocabulary == log.vocabulary and back.vocabulary.attributes_of("10") == ("b1", "c2")
    assert Vocabulary.from_json(log.vocabulary.to_json()) == log.vocabulary
    assert "attributes" not in Vocabulary.from_actions(["a"]).to_json()  # unchanged JSON without attributes


def test_sasrec_lines_number_each_users_lines_in_order(tmp_path):
    path = _write(tmp_path / "ml.txt", "1 5\n1 7\n2 5\n1 9\n2 8\n")
    assert detect_format(path).name == "sasrec-lines"
    log = load(path)
    assert log.action_sequences() == {"1": ["5", "7", "9"], "2": ["5", "8"]}
    assert sorted(log.frame.filter(log.frame["user_id"] == "1")["position"].to_list()) == [0, 1, 2]


def test_two_fields_and_no_user_twice_is_stated_as_ambiguous(tmp_path):
    path = _write(tmp_path / "x.txt", "1 5\n2 7\n3 5\n")
    with pytest.raises(DataError, match="either sequence layout") as caught:
        load(path)
    assert "--format sasrec-lines" in caught.value.hint
    assert load(path, format="sequence-lines").n_users == 3
    assert load(path, format="sasrec-lines").n_events == 3


def test_a_numeric_table_without_header_is_not_taken_for_a_sequence_file(tmp_path):
    path = _write(tmp_path / "t.txt", "1 5 881250949\n1 7 881250950\n2 5 881250951\n")
    assert detect_format(path).name == "csv"


def test_lines_that_do_not_fit_are_listed_by_line(tmp_path):
    with pytest.raises(DataError, match="do not fit") as caught:
        load(_write(tmp_path / "a.txt", "1 5\n1 7 8\n2 5\n"), format="sasrec-lines")
    assert [p.row for p in caught.value.problems] == [2]
    with pytest.raises(DataError, match="do not fit") as caught:
        load(_write(tmp_path / "b.txt", "1 5 6\n2\n3 4 5 6\n1 9\n"), format="sequence-lines")
    assert [p.row for p in caught.value.problems] == [2]  # the line without items; the repeated user is checked after


def test_a_user_on_two_lines_is_refused(tmp_path):
    with pytest.raises(DataError, match="do not fit") as caught:
        load(_write(tmp_path / "b.txt", "1 5 6\n3 4 5 6\n1 9 10\n"), format="sequence-lines")
    assert [p.row for p in caught.value.problems] == [1, 3]
    assert "merge" in caught.value.hint


def test_a_bad_attribute_file_is_reported(tmp_path):
    path = _write(tmp_path / "s.txt", "1 10 11\n2 11 10 12\n")
    with pytest.raises(DataError, match="not valid JSON"):
        load(path, item_attributes=_write(tmp_path / "a.json", "{"))
    with pytest.raises(DataError, match="without a list"):
        load(path, item_attributes=_write(tmp_path / "b.json", '{"10": 3}'))


def test_options_a_layout_does_not_take_are_refused(tmp_path):
    path = _write(tmp_path / "s.txt", "1 10 11\n2 11 10 12\n")
    with pytest.raises(ConfigError, match="separator"):
        load(path, separator=";")
