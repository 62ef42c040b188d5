from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from behaviorlab.errors import ConfigError, DataError
from behaviorlab.schema import USER, EventLog, Schema, Vocabulary, in_user_bucket, user_buckets
from behaviorlab.sequences import (
    NextEventExamples,
    count_exact_duplicates,
    drop_exact_duplicates,
    drop_exact_duplicates_lazy,
    encode_examples,
    examples_from_log,
    grouped_by_user,
    k_core,
    last_event_examples,
    leave_one_out,
    make_split,
    pad_left,
    published_parts,
    published_split,
    sessions_by_day,
    sessions_by_gap,
    split_rule,
    temporal_split,
    time_range,
    value_threshold,
    windows,
)

T0 = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def stamp_log(rows, extras=None):
    """rows: (user, minutes after T0, action, *extra values)."""
    extras = extras or {}
    columns = {"user_id": [r[0] for r in rows], "timestamp": [T0 + timedelta(minutes=r[1]) for r in rows],
               "action": [r[2] for r in rows]}
    for i, name in enumerate(extras):
        columns[name] = [r[3 + i] for r in rows]
    dtypes = Schema(extras=extras).dtypes()
    frame = pl.DataFrame(columns, schema={c: dtypes[c] for c in columns})
    return EventLog(frame, Schema(extras=extras))


def position_log(rows, extras=None):
    extras = extras or {}
    columns = {"user_id": [r[0] for r in rows], "position": [r[1] for r in rows], "action": [r[2] for r in rows]}
    for i, name in enumerate(extras):
        columns[name] = [r[3 + i] for r in rows]
    schema = Schema(time="position", extras=extras)
    return EventLog(pl.DataFrame(columns, schema={c: schema.dtypes()[c] for c in columns}), schema)


# Rows deliberately out of time order; user c has too few events for leave-one-out.
LOG_ROWS = [
    ("a", 30, "x3"), ("a", 10, "x1"), ("a", 20, "x2"), ("a", 40, "x4"),
    ("b", 5, "y1"), ("b", 6, "y2"), ("b", 7, "y3"),
    ("c", 1, "z1"), ("c", 2, "z2"),
]


def test_leave_one_out_follows_recbole_ls_and_keeps_short_users_in_train():
    split = leave_one_out(stamp_log(LOG_ROWS))
    train = split.train.action_sequences()
    assert train == {"a": ["x1", "x2"], "b": ["y1"], "c": ["z1", "z2"]}
    assert dict(zip(split.valid.user_ids, zip(split.valid.histories, split.valid.targets))) == {
        "a": (["x1", "x2"], "x3"), "b": (["y1"], "y2")}
    assert dict(zip(split.test.user_ids, zip(split.test.histories, split.test.targets))) == {
        "a": (["x1", "x2", "x3"], "x4"), "b": (["y1", "y2"], "y3")}
    # no test or valid target appears in train for evaluated users
    assert "x3" not in train["a"] and "x4" not in train["a"]


def test_leave_one_out_ties_in_time_keep_row_order_and_context_is_target_event():
    rows = [("u", 0, "a", "Mon"), ("u", 5, "b", "Tue"), ("u", 5, "c", "Wed"), ("u", 9, "d", "Thu")]
    split = leave_one_out(stamp_log(rows, {"weekday": "str"}))
    assert split.test.histories == [["a", "b", "c"]] and split.test.targets == ["d"]
    assert split.valid.targets == ["c"]  # b and c tie at minute 5: row order decides
    assert split.valid.context == {"weekday": ["Wed"]} and split.test.context == {"weekday": ["Thu"]}


def test_leave_one_out_rejects_min_events_below_three():
    with pytest.raises(DataError):
        leave_one_out(stamp_log(LOG_ROWS), min_events=2)


def test_temporal_split_cuts_globally_and_histories_include_earlier_events():
    rows = [("a", m, f"a{m}") for m in range(10)] + [("b", m, f"b{m}") for m in range(10)]
    split = temporal_split(stamp_log(rows), valid_ratio=0.2, test_ratio=0.2)
    train_times = split.train.frame.get_column("timestamp")
    assert train_times.max() == T0 + timedelta(minutes=5)  # 12 of 20 events are before minute 6
    assert sorted(split.valid.targets) == ["a6", "a7", "b6", "b7"]
    assert sorted(split.test.targets) == ["a8", "a9", "b8", "b9"]
    i = split.test.targets.index("a9")
    assert split.test.histories[i] == [f"a{m}" for m in range(9)]  # sees train + valid-period events


def test_temporal_split_rejects_bad_ratios():
    with pytest.raises(DataError):
        temporal_split(stamp_log(LOG_ROWS), valid_ratio=0.6, test_ratio=0.5)


def test_published_split_uses_split_column_and_target_context():
    rows = [("tr-0", p, f"t{p}", "train", "Mon") for p in range(3)]
    rows += [("va-0", p, f"v{p}", "valid", "Tue") for p in range(3)]
    rows += [("te-0", 0, "e0", "test", "Wed"), ("te-0", 1, "e1", "test", "Sat")]
    split = published_split(position_log(rows, {"split": "str", "weekday": "str"}))
    assert split.train.action_sequences() == {"tr-0": ["t0", "t1", "t2"]}
    assert (split.valid.histories, split.valid.targets) == ([["v0", "v1"]], ["v2"])
    assert (split.test.histories, split.test.targets, split.test.context) == ([["e0"]], ["e1"], {"weekday": ["Sat"]})


def test_published_split_reports_unknown_labels_and_mixed_sequences():
    rows = [("s", 0, "a", "train"), ("s", 1, "b", "valid"), ("t", 0, "c", "dev")]
    with pytest.raises(DataError) as info:
        published_split(position_log(rows, {"split": "str"}))
    text = str(info.value)
    assert "'dev'" in text and "more than one split" in text


def test_split_rule_defaults_to_the_published_split_else_leave_one_out():
    published = position_log([("s", p, f"a{p}", "train") for p in range(3)], {"split": "str"})
    plain = stamp_log(LOG_ROWS)
    assert (split_rule(published), split_rule(plain), split_rule(plain, "temporal")) == ("published", "loo", "temporal")
    with pytest.raises(ConfigError, match="Unknown split 'random'"):
        split_rule(plain, "random")
    with pytest.raises(ConfigError, match="no published split"):
        split_rule(plain, "published")


def test_make_split_applies_the_named_rule():
    log = stamp_log(LOG_ROWS)
    for how, expected in ((None, leave_one_out(log)), ("loo", leave_one_out(log)), ("temporal", temporal_split(log))):
        split = make_split(log, how)
        assert split.train.frame.equals(expected.train.frame)
        assert (split.valid, split.test) == (expected.valid, expected.test)


def test_published_parts_are_the_labelled_rows():
    rows = [("tr", 0, "a", "train"), ("tr", 1, "b", "train"), ("te", 0, "c", "test")]
    train, valid, test = published_parts(position_log(rows, {"split": "str"}))
    assert (train.n_events, valid.n_events, test.n_events) == (2, 0, 1)
    with pytest.raises(DataError, match="no 'split' column"):
        published_parts(stamp_log(LOG_ROWS))


def test_examples_from_log_every_prefix_with_truncation():
    ex = examples_from_log(stamp_log(LOG_ROWS), min_history=1, max_len=2)
    a = [(h, t) for u, h, t in zip(ex.user_ids, ex.histories, ex.targets) if u == "a"]
    assert a == [(["x1"], "x2"), (["x1", "x2"], "x3"), (["x2", "x3"], "x4")]
    assert len(ex) == 3 + 2 + 1
    assert len(examples_from_log(stamp_log(LOG_ROWS), min_history=0)) == 9


def test_last_event_examples_skips_single_event_users():
    ex = last_event_examples(stamp_log(LOG_ROWS + [("d", 1, "w")]))
    assert sorted(ex.user_ids) == ["a", "b", "c"]
    with pytest.raises(DataError):
        last_event_examples(stamp_log(LOG_ROWS), context_columns=["weekday"])


def test_examples_reject_inconsistent_lengths():
    with pytest.raises(DataError):
        NextEventExamples(["u"], [["a"], ["b"]], ["c"])


def test_pad_left_keeps_last_ids():
    out = pad_left([[1, 2, 3, 4], [5], []], max_len=3)
    assert out.dtype == np.int64
    assert out.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]


def test_encode_examples_maps_ids_and_rejects_unknown_actions():
    vocab = Vocabulary.from_actions(["a", "b", "c"])
    ex = NextEventExamples(["u", "v"], [["a", "b"], ["c"]], ["c", "a"])
    histories, targets = encode_examples(ex, vocab, max_len=3)
    assert histories.tolist() == [[0, 1, 2], [0, 0, 3]] and targets.tolist() == [3, 1]
    with pytest.raises(DataError):
        encode_examples(NextEventExamples(["u"], [["zzz"]], ["a"]), vocab, 3)


def test_windows_full_windows_with_stride():
    log = stamp_log(LOG_ROWS)
    assert windows(log, 2) == [["x1", "x2"], ["x3", "x4"], ["y1", "y2"], ["z1", "z2"]]
    assert windows(log, 3, stride=1) == [["x1", "x2", "x3"], ["x2", "x3", "x4"], ["y1", "y2", "y3"]]


def test_sessions_by_day_uses_local_offset():
    # 23:30 UTC on Jan 1 is Jan 2 for a user at UTC+60 minutes.
    rows = [("u", 15 * 60 + 30, "late", 60), ("u", 60, "morning", 60), ("v", 15 * 60 + 30, "late", 0)]
    log = sessions_by_day(stamp_log(rows, {"utc_offset_min": "int"}))
    assert log.frame.get_column("session_id").to_list() == ["u:2024-01-02", "u:2024-01-01", "v:2024-01-01"]
    assert log.schema.extras["session_id"] == "str"


def test_sessions_by_gap_splits_on_long_pauses():
    rows = [("u", 0, "a"), ("u", 10, "b"), ("u", 100, "c"), ("v", 0, "d"), ("u", 105, "e")]
    log = sessions_by_gap(stamp_log(rows), timedelta(minutes=30))
    assert log.frame.get_column("session_id").to_list() == ["u:0", "u:0", "u:1", "v:0", "u:1"]


def test_sessions_need_timestamps():
    with pytest.raises(DataError):
        sessions_by_gap(position_log([("u", 0, "a")]), timedelta(minutes=1))


def test_drop_exact_duplicates_reports_count():
    log, report = drop_exact_duplicates(stamp_log(LOG_ROWS + [("a", 10, "x1"), ("a", 10, "x1")]))
    assert log.n_events == len(LOG_ROWS) and report.events_removed == 2
    assert "2 duplicate" in report.detail


def test_k_core_iterates_to_fixed_point():
    # Round 1 drops user w (1 event); then action p drops below 2 and u loses an event, dropping below 3.
    rows = [("u", 0, "p"), ("u", 1, "q"), ("u", 2, "q"), ("w", 0, "p"),
            ("v", 0, "q"), ("v", 1, "r"), ("v", 2, "r"), ("x", 0, "r"), ("x", 1, "q"), ("x", 2, "r")]
    log, report = k_core(stamp_log(rows), min_user_events=3, min_action_events=2)
    # after w goes, p has 1 event -> dropped; u then has 2 events -> dropped; q then has 2 (v, x): stays
    assert sorted(log.users()) == ["v", "x"]
    assert set(log.vocabulary.actions) == {"q", "r"}
    assert report.events_after == 6 and report.users_before == 4 and "rounds" in report.detail
    _, second = k_core(log, 3, 2)
    assert second.events_removed == 0


def test_value_threshold_and_time_range():
    rows = [("u", 0, "a", 5.0), ("u", 60, "b", 2.0), ("u", 120, "c", None)]
    log = stamp_log(rows, {"rating": "float"})
    kept, report = value_threshold(log, "rating", 4)
    assert kept.frame.get_column("action").to_list() == ["a"] and "1 events had no rating" in report.detail
    with pytest.raises(DataError):
        value_threshold(log, "action", 1)
    ranged, _ = time_range(log, T0 + timedelta(minutes=30), None)
    assert ranged.frame.get_column("action").to_list() == ["b", "c"]
    ranged, _ = time_range(log, date(2024, 1, 1), T0 + timedelta(minutes=60))
    assert ranged.frame.get_column("action").to_list() == ["a"]
    with pytest.raises(DataError):
        time_range(log, 3, None)


def test_take_keeps_the_chosen_examples_in_order_with_their_context():
    from behaviorlab.sequences import NextEventExamples

    examples = NextEventExamples(["u0", "u1", "u2"], [["a"], ["b"], ["c"]], ["b", "c", "a"], {"hour_bin": ["x", "y", "z"]})
    taken = examples.take([2, 0])
    assert taken.user_ids == ["u2", "u0"] and taken.histories == [["c"], ["a"]] and taken.targets == ["a", "b"]
    assert taken.context == {"hour_bin": ["z", "x"]} and len(examples.take([])) == 0


def test_windows_and_examples_read_a_lazy_log_like_the_log_in_memory():
    log = stamp_log(LOG_ROWS)
    lazy = log.lazy()
    assert windows(lazy, 2) == windows(log, 2)
    assert examples_from_log(lazy, max_len=2) == examples_from_log(log, max_len=2)


@pytest.mark.parametrize("bucket_rows", [2, 1_000])  # many buckets (one streaming pass each) and one
def test_count_exact_duplicates_matches_what_drop_removes(monkeypatch, bucket_rows):
    from behaviorlab import schema

    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", bucket_rows)
    duplicated = stamp_log(LOG_ROWS + [("a", 10, "x1"), ("a", 10, "x1"), ("b", 5, "y1")])
    assert count_exact_duplicates(duplicated) == drop_exact_duplicates(duplicated)[1].events_removed == 3
    assert count_exact_duplicates(duplicated.lazy()) == 3
    assert count_exact_duplicates(stamp_log(LOG_ROWS)) == 0


# Eight users, rows out of time order, ties in time; repeats of whole rows in five users' events (one user's
# row three times), and rows that equal a row in every column but the rating (not duplicates).
DUPLICATED_ROWS = [
    ("u0", 3, "p", 1.0), ("u1", 1, "q", None), ("u0", 1, "q", 2.0), ("u2", 5, "p", 1.0), ("u0", 3, "p", 1.0),
    ("u3", 2, "r", 4.0), ("u1", 1, "q", None), ("u4", 7, "s", 1.0), ("u5", 0, "p", 3.0), ("u1", 1, "q", 5.0),
    ("u2", 5, "q", 1.0), ("u6", 4, "r", 2.0), ("u0", 1, "q", 2.0), ("u7", 9, "s", 1.0), ("u3", 2, "r", 4.0),
    ("u2", 5, "p", 1.0), ("u5", 0, "p", 3.0), ("u6", 1, "s", 2.0), ("u1", 1, "q", None), ("u4", 7, "s", 1.5),
]


def _rows_of_each_user(log):
    """{user: that user's rows in the order the log holds them}."""
    frame = log.frame.lazy().collect()
    return {user: frame.filter(pl.col(USER) == user).rows() for user in frame.get_column(USER).unique()}


@pytest.mark.parametrize("bucket_rows", [2, 5, 1_000])  # 10 buckets, 4 buckets, one bucket
def test_drop_exact_duplicates_lazy_keeps_the_rows_the_in_memory_filter_keeps(monkeypatch, bucket_rows):
    from behaviorlab import schema

    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", bucket_rows)
    log = stamp_log(DUPLICATED_ROWS, {"rating": "float"})
    buckets = user_buckets(log.n_events)
    duplicated_users = log.frame.filter(log.frame.is_duplicated()).get_column(USER).unique()
    touched = {b for b in range(buckets) if log.frame.filter(in_user_bucket(b, buckets) & pl.col(USER).is_in(duplicated_users.to_list())).height}
    assert buckets == 1 or len(touched) > 1  # the duplicates are spread over several buckets

    expected, expected_report = drop_exact_duplicates(log)
    kept, report = drop_exact_duplicates_lazy(log.lazy())
    frame = kept.frame.collect()
    assert kept.n_events == frame.height == expected.n_events == len(DUPLICATED_ROWS) - 7
    assert frame.sort(frame.columns).equals(expected.frame.sort(frame.columns))
    assert _rows_of_each_user(kept) == _rows_of_each_user(expected)  # each user's events in the same order
    if buckets == 1:
        assert frame.equals(expected.frame)  # one bucket: the log's own order
    assert str(report) == str(expected_report) and report.events_removed == 7 and report.users_after == 8
    assert kept.schema == log.schema and kept.vocabulary == log.vocabulary


@pytest.mark.parametrize("bucket_rows", [2, 5, 1_000])  # 10 buckets, 4 buckets, one bucket
def test_grouped_by_user_puts_each_user_in_one_run_in_time_order_with_ties_in_the_log_order(monkeypatch, tmp_path, bucket_rows):
    from behaviorlab import sequences

    monkeypatch.setattr(sequences, "GROUP_BUCKET_ROWS", bucket_rows)
    log = stamp_log(DUPLICATED_ROWS, {"rating": "float"})  # ties in time within users u0, u1, u2 (different ratings)
    grouped, report = grouped_by_user(log.lazy(), tmp_path)
    frame = grouped.frame.collect()
    assert report is None and grouped.n_events == frame.height == log.n_events and grouped.schema == log.schema
    assert frame.schema == log.frame.schema and frame.sort(frame.columns).equals(log.frame.sort(frame.columns))  # the same rows
    assert frame.get_column(USER).rle_id().max() + 1 == log.n_users  # one run of rows per user
    expected = log.sorted()  # by user, then time; ties keep the log's order
    assert _rows_of_each_user(grouped) == _rows_of_each_user(expected)
    assert [r[3] for r in _rows_of_each_user(grouped)["u1"]] == [None, None, 5.0, None]  # ties at minute 1, in order
    assert bool(list(tmp_path.iterdir())) == (bucket_rows < log.n_events)  # split into buckets only when larger


@pytest.mark.parametrize("group_rows, dedup_rows", [(5, 1_000), (5, 2), (1_000, 1_000)])
def test_grouped_by_user_drops_duplicates_per_bucket_as_the_in_memory_filter_does(monkeypatch, tmp_path, group_rows, dedup_rows):
    from behaviorlab import schema, sequences

    monkeypatch.setattr(sequences, "GROUP_BUCKET_ROWS", group_rows)
    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", dedup_rows)
    log = stamp_log(DUPLICATED_ROWS, {"rating": "float"})
    kept, report = grouped_by_user(log.lazy(), tmp_path, drop_duplicates=True)
    expected, expected_report = drop_exact_duplicates(log)
    frame = kept.frame.collect()
    assert str(report) == str(expected_report) and kept.n_events == frame.height == expected.n_events
    assert frame.get_column(USER).rle_id().max() + 1 == expected.n_users
    assert _rows_of_each_user(kept) == _rows_of_each_user(expected.sorted())
    (tmp_path / "again").mkdir()
    without, report = grouped_by_user(stamp_log(LOG_ROWS).lazy(), tmp_path / "again", drop_duplicates=True)
    assert report.events_removed == 0 and _rows_of_each_user(without) == _rows_of_each_user(stamp_log(LOG_ROWS).sorted())


@pytest.mark.parametrize("bucket_rows", [2, 1_000])
def test_drop_exact_duplicates_lazy_leaves_a_log_without_duplicates_as_it_is(monkeypatch, bucket_rows):
    from behaviorlab import schema

    monkeypatch.setattr(schema, "USER_BUCKET_ROWS", bucket_rows)
    log = stamp_log(LOG_ROWS)
    kept, report = drop_exact_duplicates_lazy(log.lazy())
    assert kept.frame.collect().equals(log.frame) and kept.n_events == log.n_events  # same rows, same order
    assert report.events_removed == 0 and str(report) == str(drop_exact_duplicates(log)[1])
