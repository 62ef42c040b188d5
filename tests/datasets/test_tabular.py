import json

import pytest

from behaviorlab.datasets import ColumnMapping, load
from behaviorlab.errors import DataError


def test_csv_with_default_columns_and_leading_zero_ids(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,timestamp,action\n007,2024-01-01T08:00:00Z,open\n007,2024-01-01T09:00:00Z,close\n")
    log = load(path)
    assert log.users() == ["007"] and log.action_sequences() == {"007": ["open", "close"]}


def test_tsv_with_mapping(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text("u\tt\ta\n1\t1700000000000\tx\n")
    log = load(path, mapping=ColumnMapping(user="u", time="t", action="a"))
    assert log.frame.get_column("timestamp")[0].year == 2023


def test_jsonl_with_mapping_and_errors(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"u": 1, "t": "2024-01-01", "a": "x", "v": 2.5},
                                                       {"u": 2, "t": "2024-01-02", "a": "y", "v": None}]) + "\n")
    log = load(path, mapping=ColumnMapping(user="u", time="t", action="a", extras={"v": "float"}))
    assert log.users() == ["1", "2"] and log.frame.get_column("v").to_list() == [2.5, None]
    path.write_text('{"u": 1, "t": "2024-01-01", "a": "x"}\n{"u": 1, "t": "soon", "a": null}\n')
    with pytest.raises(DataError) as info:
        load(path, mapping=ColumnMapping(user="u", time="t", action="a"))
    assert {(p.row, p.column) for p in info.value.problems} == {(2, "t"), (2, "a")}
    path.write_text("{not json\n")
    with pytest.raises(DataError):
        load(path)


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("user_id,timestamp,action\n")
    with pytest.raises(DataError, match="no events"):
        load(header_only, mapping=ColumnMapping(time_format="iso"))


def test_ragged_csv_is_a_data_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("user_id,timestamp,action\nu,1,a,extra,fields\n")
    with pytest.raises(DataError):
        load(path)


def test_integer_epochs_fast_path_falls_back_for_floats_and_lists_bad_rows(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,timestamp,action\nu,1700000000,a\nu,1700000001.5,b\n")
    log = load(path)
    assert log.frame.get_column("timestamp")[1].microsecond == 500_000
    path.write_text("user_id,timestamp,action\nu,1700000000,a\nu,later,b\nv,1700000002,c\n")
    with pytest.raises(DataError) as info:
        load(path)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "timestamp")]


def test_non_utf8_csv_is_a_data_error(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("user_id,timestamp,action\nu,1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="could not be read"):
        load(path)


def test_quoted_fields_keep_their_commas_and_files_without_quotes_parse_the_same(tmp_path):
    quoted = tmp_path / "quoted.csv"
    quoted.write_text('user_id,timestamp,action\nu1,1700000000,"open, then close"\nu1,1700000060,"x"\n')
    plain = tmp_path / "plain.csv"
    plain.write_text("user_id,timestamp,action\nu1,1700000000,open then close\nu1,1700000060,x\n")
    assert load(quoted).action_sequences() == {"u1": ["open, then close", "x"]}
    assert load(plain).action_sequences() == {"u1": ["open then close", "x"]}


@pytest.mark.parametrize("quote", ["", '"'])
def test_empty_ids_are_listed_by_row_with_and_without_quoting(tmp_path, quote):
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,timestamp,action\nu1,1700000000,{quote}a{quote}\n,1700000001,b\nu2,1700000002,\n")
    with pytest.raises(DataError) as info:
        load(path)
    assert {(p.row, p.column) for p in info.value.problems} == {(2, "user_id"), (3, "action")}
