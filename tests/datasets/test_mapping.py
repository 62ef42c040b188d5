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


EPOCH_2023 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # 1_700_000_000 s


@pytest.mark.parametrize("scale", [1, 10**3, 10**6, 10**9])
@pytest.mark.parametrize("as_text", [True, False])
def test_the_epoch_unit_is_detected_from_the_magnitude(scale, as_text):
    value = 1_700_000_000 * scale
    times = [str(value)] * 2 if as_text else [value] * 2
    data = pl.DataFrame({"user_id": ["u", "u"], "timestamp": times, "action": ["a", "b"]})
    log = event_log_from_frame(data, ColumnMapping(), source="t")
    assert log.frame.get_column("timestamp").to_list() == [EPOCH_2023, EPOCH_2023]


def test_floats_in_scientific_notation_are_epochs_too():
    log = event_log_from_frame(frame(user_id=["u", "u"], timestamp=["1.7e9", "1.7e18"], action=["a", "b"]),
                               ColumnMapping(time_unit="auto", time_format="epoch", min_year=1970), source="t")
    assert log.frame.get_column("timestamp").to_list()[1] == EPOCH_2023  # the sample's largest value picks ns
    log = event_log_from_frame(frame(user_id=["u"], timestamp=["1.7e9"], action=["a"]), ColumnMapping(), source="t")
    assert log.frame.get_column("timestamp")[0] == EPOCH_2023


def test_epoch_shorthands_are_the_format_and_unit_spelled_together():
    assert ColumnMapping(time_format="epoch_ms") == ColumnMapping(time_format="epoch", time_unit="ms")
    assert ColumnMapping(time_format="epoch_ns", time_unit="ns").time_unit == "ns"
    for values in ({"time_format": "epoch_s", "time_unit": "ms"}, {"time_format": "iso", "time_unit": "ns"},
                   {"min_year": 2000, "max_year": 1999}, {"max_year": 10_000}, {"time_unit": "days"}):
        with pytest.raises(ConfigError):
            parse_config(ColumnMapping, values)


def test_an_explicit_unit_wins_over_the_magnitude_and_means_epoch():
    data = pl.DataFrame({"user_id": ["u"], "timestamp": [1_700_000_000_000], "action": ["a"]})
    assert event_log_from_frame(data, ColumnMapping(time_unit="ms"), source="t").frame.get_column("timestamp")[0] == EPOCH_2023
    small = pl.DataFrame({"user_id": ["u"], "timestamp": [5], "action": ["a"]})
    assert event_log_from_frame(small, ColumnMapping(), source="t").time_column == "position"
    assert event_log_from_frame(small, ColumnMapping(time_unit="s"), source="t").time_column == "timestamp"


def test_times_outside_the_years_are_listed_instead_of_overflowing():
    # 1.7e18 read as seconds would overflow int64 microseconds into a plausible-looking wrong time
    data = pl.DataFrame({"user_id": ["u", "u", "v"], "timestamp": [1_700_000_000, 1_700_000_000_000_000_000, -5],
                         "action": ["a", "b", "c"]})
    with pytest.raises(DataError) as info:
        event_log_from_frame(data, ColumnMapping(time_unit="s"), source="t")
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "timestamp"), (3, "timestamp")]
    assert "outside the years 1970..2100 (read as epoch s)" in info.value.problems[0].message
    assert "time_unit" in info.value.hint


def test_the_year_range_applies_to_every_time_format_and_can_be_widened():
    with pytest.raises(DataError) as info:
        event_log_from_frame(frame(user_id=["u", "u"], timestamp=["1969-12-31T23:59:59", "2101-01-01"], action=["a", "b"]),
                             ColumnMapping(), source="t")
    assert [p.row for p in info.value.problems] == [1, 2]
    typed = pl.DataFrame({"user_id": ["u"], "timestamp": [datetime(1900, 5, 1)], "action": ["a"]})
    with pytest.raises(DataError, match="problem in the rows"):
        event_log_from_frame(typed, ColumnMapping(), source="t")
    log = event_log_from_frame(typed, ColumnMapping(min_year=1900), source="t")
    assert log.frame.get_column("timestamp")[0] == datetime(1900, 5, 1, tzinfo=UTC)
    edges = frame(user_id=["u", "u"], timestamp=["1970-01-01T00:00:00", "2100-12-31T23:59:59.999999"], action=["a", "b"])
    assert event_log_from_frame(edges, ColumnMapping(), source="t").n_events == 2


def test_one_column_for_two_roles_is_refused():
    with pytest.raises(DataError, match="one column for two roles") as info:
        event_log_from_frame(frame(u=["1700000000"], a=["x"]), ColumnMapping(user="u", time="u", action="a"), source="t")
    assert [(p.column, p.message) for p in info.value.problems] == [("u", "is mapped as both the user and the time column")]
    rows = event_log_from_frame(frame(u=["1"], a=["x"]), ColumnMapping(user="u", time="u", action="a", time_format="row_order"),
                                source="t")
    assert rows.n_events == 1  # row_order reads no time column, so nothing is shared


def test_columns_of_a_type_that_cannot_hold_their_role_are_named():
    data = pl.DataFrame({"user_id": [[1]], "timestamp": [True], "action": [{"x": 1}], "tags": [["a"]]})
    with pytest.raises(DataError, match="columns of the wrong type") as info:
        event_log_from_frame(data, ColumnMapping(extras={"tags": "str"}), source="t")
    found = {p.column: p.message for p in info.value.problems}
    assert found["user_id"].startswith("holds List(Int64), but the user column needs")
    assert found["timestamp"].startswith("holds Boolean") and set(found) == {"user_id", "timestamp", "action", "tags"}


def test_text_values_over_the_limit_are_listed_by_row():
    from behaviorlab.datasets.mapping import MAX_TEXT_BYTES

    data = frame(user_id=["u", "x" * (MAX_TEXT_BYTES + 1)], timestamp=["2024-01-01"] * 2, action=["a" * MAX_TEXT_BYTES, "b"])
    with pytest.raises(DataError) as info:
        event_log_from_frame(data, ColumnMapping(), source="t")
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "user_id")]
    assert "longer than 1 MiB" in info.value.problems[0].message
