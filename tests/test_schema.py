from datetime import UTC, datetime

import polars as pl
import pytest
from pydantic import ValidationError

from behaviorlab.errors import DataError
from behaviorlab.schema import (
    HOUR_BINS,
    WEEKDAYS,
    EventLog,
    LazyEventLog,
    Population,
    Profile,
    RoutineAnchors,
    Schema,
    Vocabulary,
    digest,
)


def make_log(users, times, actions, schema=None, vocabulary=None):
    schema = schema or Schema()
    frame = pl.DataFrame({"user_id": users, "timestamp": times, "action": actions},
                         schema={"user_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "action": pl.String})
    return EventLog(frame, schema, vocabulary)


def t(hour):
    return datetime(2024, 1, 1, hour, tzinfo=UTC)


def test_schema_json_round_trip_and_rejections():
    schema = Schema(name="x", domain="mobility", extras={"item": "str", "lat": "float"}, source="f.csv")
    assert Schema.from_json(schema.to_json()) == schema
    assert schema.columns == ["user_id", "timestamp", "action", "item", "lat"]
    with pytest.raises(ValidationError, match="must not redefine canonical columns"):
        Schema(extras={"action": "str"})
    with pytest.raises(DataError):
        Schema.from_json('{"name": "x", "colour": "red"}')


def test_vocabulary_ids_padding_and_json():
    vocab = Vocabulary.from_actions(["b", "a", "b"], {"a": "Alpha"})
    assert vocab.actions == ("a", "b") and vocab.size_with_padding == 3
    assert vocab.ids_of(["a", "b"]) == [1, 2] and vocab.action_of(2) == "b"
    assert vocab.describe("a") == "Alpha" and vocab.describe("b") == "b"
    assert Vocabulary.from_json(vocab.to_json()) == vocab
    assert vocab.restricted_to(["b"]).actions == ("b",)
    with pytest.raises(DataError):
        vocab.id_of("zzz")
    with pytest.raises(DataError):
        vocab.action_of(0)  # 0 is padding
    with pytest.raises(DataError) as info:
        Vocabulary(("a", "a", ""), {"q": "?"})
    assert len(info.value.problems) == 3


def test_event_log_validates_columns_types_and_ids():
    with pytest.raises(DataError) as info:
        EventLog(pl.DataFrame({"user_id": [1], "when": [t(1)], "action": ["a"]}), Schema())
    columns = {p.column for p in info.value.problems}
    assert columns == {"user_id", "timestamp", "when"}
    with pytest.raises(DataError) as info:
        make_log(["u", None], [t(1), t(2)], ["a", ""])
    assert {(p.row, p.column) for p in info.value.problems} == {(2, "user_id"), (2, "action")}  # 1-based data rows
    with pytest.raises(DataError, match="missing from its vocabulary"):
        make_log(["u"], [t(1)], ["a"], vocabulary=Vocabulary.from_actions(["b"]))


def test_event_log_sequences_ties_and_summary():
    log = make_log(["u", "v", "u", "u"], [t(3), t(1), t(1), t(1)], ["late", "v1", "first", "second"])
    assert log.action_sequences() == {"u": ["first", "second", "late"], "v": ["v1"]}  # ties keep row order
    assert log.sorted().frame.get_column("action").to_list() == ["first", "second", "late", "v1"]
    summary = log.summary(top=2)
    assert (summary.n_users, summary.n_events, summary.n_actions) == (2, 4, 4)
    assert summary.first == t(1) and summary.last == t(3)
    assert summary.events_per_user_quantiles["max"] == 3 and summary.events_per_user_quantiles["min"] == 1
    assert len(summary.top_actions) == 2
    kept = log.filter(pl.col("user_id") == "v")
    assert kept.vocabulary == log.vocabulary and kept.n_events == 1


def test_the_summary_counts_users_the_same_in_buckets(monkeypatch):
    """Large logs count events per user one bucket of users at a time: the same counts as one pass."""
    from behaviorlab import schema

    log = make_log([f"u{i % 7}" for i in range(50)], [t(1 + i % 20) for i in range(50)], [f"a{i % 3}" for i in range(50)])
    whole = log.summary()
    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", 4)  # 13 buckets
    assert schema.user_buckets(log.n_events) == 13 and log.lazy().summary() == whole and log.lazy().count_users() == 7


def test_profile_population_round_trip_and_validation():
    profile = Profile(profile_id="p1", age_group="25-34", routine=RoutineAnchors(work_start=9, work_end=17), active_hours=[8, 20])
    population = Population(profiles=[profile], seed=7, diversity=0.8, settings={"k": 3})
    assert Population.from_json(population.to_json()) == population
    assert Profile.from_json(profile.to_json()) == profile
    with pytest.raises(ValidationError, match="active hours must be 0..23"):
        Profile(profile_id="p", active_hours=[24])
    with pytest.raises(ValidationError, match="work_end must be after work_start"):
        RoutineAnchors(work_start=9, work_end=8)
    with pytest.raises(ValidationError, match="given together or not at all"):
        RoutineAnchors(work_start=9)  # a work window needs both ends
    with pytest.raises(DataError):
        Profile.from_json('{"profile_id": "p", "shoe_size": 44}')


def test_time_bin_constants():
    assert HOUR_BINS[0] == "(0~3)" and HOUR_BINS[-1] == "(21~24)" and len(HOUR_BINS) == 8
    assert WEEKDAYS == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def test_score_columns_are_the_ids_without_the_padding_slot():
    vocabulary = Vocabulary.from_actions(["b", "a", "c"])
    assert [vocabulary.column_of(a) for a in vocabulary.actions] == [0, 1, 2]
    assert vocabulary.columns_of(["c", "a"]) == [2, 0]
    assert all(vocabulary.actions[vocabulary.column_of(a)] == a for a in vocabulary.actions)
    with pytest.raises(DataError, match="Unknown action 'z'"):
        vocabulary.column_of("z")


def test_digest_is_the_stored_hash_of_the_joined_parts():
    import hashlib

    # Experiment results and run manifests store these values: they must not change.
    assert digest("a", 1) == hashlib.sha256(b"a|1").hexdigest()[:16]
    assert digest("payload", length=64) == hashlib.sha256(b"payload").hexdigest()
    log = EventLog(pl.DataFrame({"user_id": ["u", "u"], "position": [0, 1], "action": ["x", "y"]}), Schema(time="position"))
    assert log.digest() == digest(f"{log.row_hash()}:2")


def test_rows_known_to_be_checked_skip_only_the_passes_over_the_rows(monkeypatch):
    log = make_log(["u", "v"], [t(1), t(2)], ["a", "b"])
    frame = log.frame.select("action", "user_id", "timestamp")  # columns in another order come back in schema order
    import behaviorlab.schema as schema_module

    def no_row_pass(*args):
        raise AssertionError("the rows were checked again")

    monkeypatch.setattr(schema_module, "_validated", no_row_pass)
    checked = EventLog.with_rows_checked(frame, log.schema, log.vocabulary)
    assert checked.frame.equals(log.frame) and checked.vocabulary == log.vocabulary
    # What costs no pass over the rows is still checked, with the errors of construction.
    with pytest.raises(DataError) as info:
        EventLog.with_rows_checked(frame.rename({"timestamp": "when"}), log.schema, log.vocabulary)
    assert {p.column for p in info.value.problems} == {"timestamp", "when"}
    with pytest.raises(DataError, match="does not match") as info:
        EventLog.with_rows_checked(frame.with_columns(pl.lit(None, pl.String).alias("user_id")), log.schema, log.vocabulary)
    assert {(p.row, p.column) for p in info.value.problems} == {(1, "user_id"), (2, "user_id")}


def test_a_lazy_log_checked_in_one_streaming_pass_names_the_bad_rows():
    frame = pl.DataFrame({"user_id": ["u1", "u1", None, "u2"], "position": [1, 2, 3, 4], "action": ["a", "", "b", "a"]})
    schema, vocabulary = Schema(time="position"), Vocabulary.from_actions(["a", "b"])
    good = LazyEventLog(frame.lazy().filter(pl.col("user_id").is_not_null() & (pl.col("action") != "")), schema,
                        vocabulary, 2)
    assert good.checked() is good
    with pytest.raises(DataError) as info:
        LazyEventLog(frame.lazy(), schema, vocabulary, 4).checked()
    assert {(p.row, p.column) for p in info.value.problems} == {(3, "user_id"), (2, "action")}
    with pytest.raises(DataError, match="1 actions in the log are missing from its vocabulary") as info:
        LazyEventLog(frame.lazy().filter(pl.col("action") == "a"), schema, Vocabulary.from_actions(["b"]), 2).checked()
    assert [p.message for p in info.value.problems] == ["unknown action 'a'"]
