from datetime import UTC, datetime

import polars as pl
import pytest

from behaviorlab.config import parse_config
from behaviorlab.datasets.mapping import ColumnMapping, concat_logs, event_log_from_frame, parse_mapping_flag
from behaviorlab.errors import ConfigError, DataError


def frame(**columns):
    return pl.DataFrame({k: v for k, v in columns.items()}, schema={k: pl.String for k in columns})


def test_iso_times_with_offsets_become_utc():
    log = event_log_from_frame(frame(user_id=["u", "u"], timestamp=["2024-01-01T10:00:00+02:00", "2024-01-01T09:30:00+00:00"],
                                     action=["a", "b"]), ColumnMapping(), source="t")
    assert log.frame.get_column("timestamp").to_list() == [
        datetime(2024, 1, 1, 8, 0, tzinfo=UTC), datetime(2024, 1, 1, 9, 30, tzinfo=UTC)]


@pytest.mark.parametrize(("values", "expected_time"), [
    (["881250949", "881250950"], datetime(1997, 12, 4, 15, 55, 49, tzinfo=UTC)),
    (["881250949000", "881250950000"], datetime(1997, 12, 4, 15, 55, 49, tzinfo=UTC)),
    (["881250949.0", "881250950.5"], datetime(1997, 12, 4, 15, 55, 49, tzinfo=UTC)),
])
def test_epoch_seconds_and_milliseconds_are_detected(values, expected_time):
    log = event_log_from_frame(frame(user_id=["u", "u"], timestamp=values, action=["a", "b"]), ColumnMapping(), source="t")
    assert log.time_column == "timestamp" and log.frame.get_column("timestamp")[0] == expected_time


def test_small_integers_are_positions_and_row_order_numbers_rows():
    log = event_log_from_frame(frame(user_id=["u", "u"], timestamp=["3", "1"], action=["a", "b"]), ColumnMapping(), source="t")
    assert log.time_column == "position" and log.action_sequences() == {"u": ["b", "a"]}
    rows = event_log_from_frame(frame(user_id=["u", "v", "u"], action=["a", "b", "c"]),
                                ColumnMapping(time_format="row_order"), source="t")
    assert rows.frame.get_column("position").to_list() == [0, 0, 1]


def test_strptime_pattern_and_typed_extras():
    mapping = ColumnMapping(user="who", time="when", action="what", time_format="%d/%m/%Y %H:%M",
                            extras={"rating": "float", "n": "int", "ok": "bool", "seen": "datetime"})
    log = event_log_from_frame(frame(who=["u"], when=["02/03/2024 10:15"], what=["x"], rating=["4.5"], n=["3"], ok=["yes"],
                                     seen=["2024-03-02T00:00:00"]), mapping, source="t")
    row = log.frame.row(0, named=True)
    assert row["timestamp"] == datetime(2024, 3, 2, 10, 15, tzinfo=UTC)
    assert (row["rating"], row["n"], row["ok"]) == (4.5, 3, True)
    assert row["seen"] == datetime(2024, 3, 2, tzinfo=UTC)


def test_every_bad_row_is_listed_with_its_number():
    data = frame(user_id=["u", "", None, "v"], timestamp=["2024-01-01", "not a date", "2024-01-02", "2024-01-03"],
                 action=["a", "b", "c", None], rating=["1", "2", "x", "4"])
    with pytest.raises(DataError) as info:
        event_log_from_frame(data, ColumnMapping(extras={"rating": "float"}), source="t")
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {(2, "user_id"), (3, "user_id"), (2, "timestamp"), (4, "action"), (3, "rating")}


def test_missing_columns_listed_with_available_ones():
    with pytest.raises(DataError) as info:
        event_log_from_frame(frame(uid=["u"], ts=["1"], item=["a"]), ColumnMapping(extras={"rating": "float"}), source="t")
    assert {p.column for p in info.value.problems} == {"user_id", "timestamp", "action", "rating"}
    assert "uid" in info.value.hint


def test_empty_table_is_an_error():
    with pytest.raises(DataError, match="no events"):
        event_log_from_frame(frame(user_id=[], timestamp=[], action=[]), ColumnMapping(time_format="iso"), source="t")


def test_description_column_fills_vocabulary():
    mapping = ColumnMapping(descriptions="title", time_format="row_order")
    log = event_log_from_frame(frame(user_id=["u", "u"], action=["1", "2"], title=["Toy Story", "Heat"]), mapping, source="t")
    assert log.vocabulary.describe("2") == "Heat"


def test_mapping_flag_and_config_validation():
    assert parse_mapping_flag("user=uid, time=ts,action=item") == {"user": "uid", "time": "ts", "action": "item"}
    with pytest.raises(DataError):
        parse_mapping_flag("user")
    with pytest.raises(ConfigError):
        parse_config(ColumnMapping, {"usr": "x"})
    with pytest.raises(ConfigError):
        parse_config(ColumnMapping, {"time_format": "sometimes"})


def test_concat_logs_merges_vocabularies():
    a = event_log_from_frame(frame(user_id=["u"], action=["x"]), ColumnMapping(time_format="row_order"), source="a")
    b = event_log_from_frame(frame(user_id=["v"], action=["y"]), ColumnMapping(time_format="row_order"), source="b")
    both = concat_logs([a, b], source="ab")
    assert both.vocabulary.actions == ("x", "y") and both.n_users == 2 and both.schema.source == "ab"
