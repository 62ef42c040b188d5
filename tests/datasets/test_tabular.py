import json

import polars as pl
import pytest

from behaviorlab.datasets import ColumnMapping, detect_format, load, read_event_log, scan, write_event_log
from behaviorlab.datasets.tabular import load_csv
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
    with pytest.raises(DataError, match="is not UTF-8 text: it looks like Latin-1") as info:
        load(path)
    assert "line 2, column 8" in info.value.message and "iconv -f LATIN1 -t UTF-8" in info.value.hint


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


@pytest.mark.parametrize("header", ["user_id,timestamp,action,user_id", '"user_id","timestamp","action","user_id"'])
def test_a_header_that_repeats_a_column_is_refused(tmp_path, header):
    path = tmp_path / "events.csv"
    path.write_text(header + "\n" + "".join(f"{i},{1_700_000_000 + i},a,{i % 2}\n" for i in range(6)))
    with pytest.raises(DataError, match="the header repeats the column 'user_id'"):
        load(path)


def test_utf16_csv_names_its_encoding_instead_of_blaming_the_mapping(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,timestamp,action\nu,1700000000,a\n", encoding="utf-16")
    with pytest.raises(DataError, match="it looks like UTF-16") as info:
        load(path)
    assert "iconv -f UTF-16 -t UTF-8" in info.value.hint


def test_jsonl_syntax_errors_are_located_by_line_and_column(tmp_path):
    path = tmp_path / "events.jsonl"
    good = [json.dumps({"user_id": "u", "timestamp": 1_700_000_000 + i, "action": "a"}) for i in range(20_001)]
    path.write_text("\n".join([*good, '{"user_id": "v",, "action": "b"}']) + "\n")  # past the lines polars infers from
    with pytest.raises(DataError, match="not valid JSON lines") as info:
        load(path)
    assert info.value.problems[0].message.startswith("line 20002, column 17: Expecting property name")


def test_jsonl_key_given_twice_and_parquet_column_given_twice_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "events.jsonl"
    path.write_text('{"user_id": "a", "timestamp": 1700000000, "action": "x", "user_id": "b"}\n')
    with pytest.raises(DataError, match="line 1 repeats the column 'user_id'"):
        load(path)
    parquet = tmp_path / "events.parquet"
    pq.write_table(pa.table([pa.array(["a"]), pa.array([1]), pa.array(["b"])], names=["user_id", "action", "action"]), parquet)
    with pytest.raises(DataError, match="the schema repeats the column 'action'"):
        load(parquet)


def _events(users: list[str], times: list[int], actions: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": users, "timestamp": times, "action": actions})


def test_a_folder_of_parquet_parts_loads_as_one_table(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    first, second = _events(["u1", "u2"], [1_700_000_000, 1_700_000_001], ["a", "b"]), _events(["u1"], [1_700_000_002], ["c"])
    first.write_parquet(folder / "part-0.parquet")
    second.write_parquet(folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")  # writers' markers are not data
    whole = tmp_path / "whole.parquet"
    pl.concat([first, second]).write_parquet(whole)
    assert detect_format(folder).name == "parquet"
    assert load(folder).frame.equals(load(whole).frame)


def test_hive_partition_folders_become_columns_through_the_mapping(tmp_path):
    for day, frame in ((1, _events(["u1", "u2"], [1_700_000_000, 1_700_000_001], ["a", "b"])),
                       (2, _events(["u3"], [1_700_000_002], ["c"]))):
        (tmp_path / "log" / f"day={day}").mkdir(parents=True)
        frame.write_parquet(tmp_path / "log" / f"day={day}" / "data.parquet")
    log = load(tmp_path / "log", mapping=ColumnMapping(extras={"day": "int"}))
    assert log.frame.get_column("day").to_list() == [1, 1, 2] and log.frame.get_column("action").to_list() == ["a", "b", "c"]


def test_behaviorlab_parts_read_back_losslessly_and_bad_rows_are_counted_over_the_parts(tmp_path):
    (tmp_path / "events.csv").write_text("user_id,timestamp,action\nu1,1700000000,a\nu2,1700000001,b\n")
    log = load(tmp_path / "events.csv")
    folder = tmp_path / "logs"
    write_event_log(log, folder / "p0.parquet")
    write_event_log(log, folder / "p1.parquet")
    assert load(folder).frame.equals(pl.concat([log.frame, log.frame]))
    lazy = scan(folder)  # the same read from the footers, left lazy
    assert lazy.frame.collect().equals(load(folder).frame) and (lazy.schema, lazy.vocabulary) == (load(folder).schema, load(folder).vocabulary)
    bad = tmp_path / "bad"
    bad.mkdir()
    _events(["u1"], [1_700_000_000], ["a"]).write_parquet(bad / "p0.parquet")
    _events(["u2", ""], [1_700_000_001, 1_700_000_002], ["b", "c"]).write_parquet(bad / "p1.parquet")
    for read in (load, scan):
        with pytest.raises(DataError) as info:
            read(bad)
        assert [(p.row, p.column) for p in info.value.problems] == [(3, "user_id")]


def test_a_folder_without_parquet_parts_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no Parquet files"):
        load(tmp_path / "empty", format="parquet")


@pytest.mark.parametrize("separator", [",", "\t", ";", "|", " "])
def test_csv_with_any_separator_is_sniffed(tmp_path, separator):
    rows = [["user_id", "timestamp", "action"], ["u1", "1700000000", "open"], ["u1", "1700000060", "close"]]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(separator.join(r) for r in rows) + "\n", encoding="utf-8")
    assert load_csv(path).n_events == 2


def test_a_wrong_separator_names_the_one_the_file_seems_to_use(tmp_path):
    path = tmp_path / "sessions.csv"
    path.write_text("user;time;action\nu1;1700000000;open\nu2;1700000001;close\n", encoding="utf-8")
    with pytest.raises(DataError, match="one column") as caught:
        load_csv(path, ColumnMapping(time="time", user="user"), separator=",")
    assert "seems to be separated by ';': pass --sep ';'" in caught.value.hint
    assert load_csv(path, ColumnMapping(time="time", user="user")).n_events == 2


def test_no_header_and_positional_mapping(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("open|u1|1700000000\nclose|u1|1700000060\nopen|u2|1700000000\n", encoding="utf-8")
    log = load_csv(path, ColumnMapping(user="1", time="2", action="0"), header=False)
    assert (log.n_users, log.n_events) == (2, 3)
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("1,5,1700000000\n1,7,1700000060\n", encoding="utf-8")
    with pytest.raises(DataError, match="looks like data") as caught:
        load_csv(numbers)
    assert "--no-header" in caught.value.hint
    assert load_csv(numbers, ColumnMapping(user="0", time="2", action="1"), header=False).n_events == 2
    with pytest.raises(DataError, match="index 7"):
        load_csv(path, ColumnMapping(user="7", time="2", action="0"), header=False)


def test_positions_also_index_a_header(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("uid,ts,item\nu1,1700000000,a\nu2,1700000001,b\n", encoding="utf-8")
    assert load_csv(path, ColumnMapping(user="0", time="1", action="item")).n_users == 2


def test_a_scanned_csv_is_checked_like_a_loaded_one_and_streams_into_parquet(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("uid,ts,item,title\n" + "".join(f"u{i % 3},{1_700_000_000 + i},i{i % 4},Item {i % 4}\n" for i in range(20)))
    mapping = ColumnMapping(user="uid", time="ts", action="item", descriptions="title")
    loaded, lazy = load(path, mapping=mapping), scan(path, mapping=mapping)
    assert lazy.n_events == 20 and lazy.schema == loaded.schema and lazy.vocabulary == loaded.vocabulary
    assert lazy.frame.collect().equals(loaded.frame) and lazy.summary() == loaded.summary()
    written = read_event_log(write_event_log(lazy, tmp_path / "events.parquet"))
    assert written.frame.equals(loaded.frame) and written.vocabulary == loaded.vocabulary
    assert scan(tmp_path / "events.parquet").frame.collect().equals(loaded.frame)


def test_a_scanned_csv_lists_bad_rows_by_number_and_counts_the_rest(tmp_path):
    path = tmp_path / "events.csv"
    # 55 of 200 times are text (a minority: the column still reads as epoch numbers), one action is empty
    rows = [f"u{i},{'later' if 3 <= i < 58 else 1_700_000_000 + i},{'' if i == 1 else 'open'}" for i in range(200)]
    path.write_text("user_id,timestamp,action\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        scan(path)
    assert (2, "action") in {(p.row, p.column) for p in info.value.problems}
    times = [p for p in info.value.problems if p.column == "timestamp"]
    assert [p.row for p in times[:50]] == list(range(4, 54)) and "5 more rows" in times[-1].message


def test_a_parquet_folder_scans_lazily_through_the_mapping(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(2):
        pl.DataFrame({"user_id": [f"u{i}", "u9"], "timestamp": [1_700_000_000 + i, 1_700_000_100], "action": ["a", f"b{i}"]}
                     ).write_parquet(folder / f"part-{i}.parquet")
    lazy = scan(folder)
    assert lazy.n_events == 4 and lazy.vocabulary.actions == ("a", "b0", "b1")
    assert lazy.frame.collect().equals(load(folder).frame)
