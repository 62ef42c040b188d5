"""Per-user sequences from an EventLog: splits, prediction examples, padding, windows, sessions, filters.

Every function reads events per user in time order; ties in time keep the log's row order (stable
sort), so a source's own order decides between events with equal timestamps. A "window", here and
everywhere in behaviorlab, is a run of consecutive events of one user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from behaviorlab.errors import ConfigError, DataError, Problem
from behaviorlab.schema import (
    ACTION,
    SPLIT,
    TIMESTAMP,
    USER,
    EventLog,
    LazyEventLog,
    Schema,
    Vocabulary,
    in_user_bucket,
    user_bucket,
    user_buckets,
)

SESSION = "session_id"
# The extras that describe *when* a target event happens; splits attach them as context by default,
# because a model may legitimately know when it is asked to predict (SmartThings weekday/hour bin).
TIME_CONTEXT_COLUMNS: tuple[str, ...] = ("weekday", "hour_bin", "local_hour")
# Foursquare-style logs carry the user's UTC offset so that "a day" means the user's local day.
UTC_OFFSET_COLUMN = "utc_offset_min"


@dataclass(frozen=True)
class NextEventExamples:
    """Prediction examples: each history (oldest action first) is followed by its target action."""

    user_ids: list[str]
    histories: list[list[str]]
    targets: list[str]
    context: dict[str, list] = field(default_factory=dict)  # per-example features of the TARGET event

    def __post_init__(self) -> None:
        n = len(self.targets)
        lengths = {"user_ids": len(self.user_ids), "histories": len(self.histories)}
        lengths |= {f"context[{name!r}]": len(values) for name, values in self.context.items()}
        wrong = [Problem(f"has {size} entries, expected {n} (one per target)", column=name)
                 for name, size in lengths.items() if size != n]
        if wrong:
            raise DataError("Inconsistent prediction examples", wrong, hint="Give one entry per example in every list.")

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, indices: Sequence[int]) -> NextEventExamples:
        """The examples at `indices`, in that order, with their context."""
        return NextEventExamples([self.user_ids[i] for i in indices], [self.histories[i] for i in indices],
                                 [self.targets[i] for i in indices],
                                 {name: [values[i] for i in indices] for name, values in self.context.items()})


@dataclass(frozen=True)
class SequenceSplit:
    """Train events, validation examples (model choice only) and test examples (reported once)."""

    train: EventLog
    valid: NextEventExamples
    test: NextEventExamples


@dataclass(frozen=True)
class FilterReport:
    """What one cleaning filter removed."""

    name: str
    events_before: int
    events_after: int
    users_before: int
    users_after: int
    detail: str = ""

    @property
    def events_removed(self) -> int:
        return self.events_before - self.events_after

    def __str__(self) -> str:
        text = (f"{self.name}: {self.events_before:,} -> {self.events_after:,} events, "
                f"{self.users_before:,} -> {self.users_after:,} users")
        return f"{text} ({self.detail})" if self.detail else text


# ---------------------------------------------------------------- per-user grouping


def _user_groups(log: EventLog | LazyEventLog, columns: Sequence[str] = ()) -> pl.DataFrame:
    """One row per user (in order of first appearance) with list columns [action, *columns] in time order.

    A LazyEventLog is read from its source here, only the columns asked for: the log itself need not be in memory."""
    wanted = [ACTION, *[c for c in columns if c != ACTION]]
    return (
        log.frame.lazy().select(list(dict.fromkeys([USER, log.time_column, *wanted])))  # a time column asked for is selected once
        .sort([USER, log.time_column], maintain_order=True)
        .group_by(USER, maintain_order=True)
        .agg([pl.col(c) for c in wanted])
        .collect()
    )


def _context_columns(log: EventLog | LazyEventLog, requested: Sequence[str] | None) -> list[str]:
    """None means the time-describing extras the log has; an explicit list must exist in the log."""
    available = log.frame.lazy().collect_schema().names()
    if requested is None:
        return [c for c in TIME_CONTEXT_COLUMNS if c in available]
    missing = [c for c in requested if c not in available]
    if missing:
        raise DataError("Unknown context columns", [Problem("not in the log", column=c) for c in missing],
                        hint=f"Choose from {available}.")
    return list(requested)


class _ExampleBuilder:
    """Accumulates examples; context values are taken from the target event."""

    def __init__(self, context_columns: Sequence[str]) -> None:
        self.user_ids: list[str] = []
        self.histories: list[list[str]] = []
        self.targets: list[str] = []
        self.context: dict[str, list] = {c: [] for c in context_columns}

    def add(self, user: str, history: list[str], target: str, row: dict[str, list], index: int) -> None:
        self.user_ids.append(user)
        self.histories.append(history)
        self.targets.append(target)
        for column, values in self.context.items():
            values.append(row[column][index])

    def build(self) -> NextEventExamples:
        return NextEventExamples(self.user_ids, self.histories, self.targets, self.context)


def _last_event_of_each(log: EventLog, context_columns: Sequence[str], drop_from_end: int = 0) -> NextEventExamples:
    """Per user: target = the event `drop_from_end` places before the last; history = everything before it."""
    builder = _ExampleBuilder(context_columns)
    for row in _user_groups(log, context_columns).iter_rows(named=True):
        actions = row[ACTION]
        index = len(actions) - 1 - drop_from_end
        if index >= 1:
            builder.add(row[USER], list(actions[:index]), actions[index], row, index)
    return builder.build()


# ---------------------------------------------------------------- examples


def last_event_examples(log: EventLog, context_columns: Sequence[str] = ()) -> NextEventExamples:
    """One example per user with at least 2 events: all but the last event -> the last event."""
    return _last_event_of_each(log, _context_columns(log, context_columns))


def examples_from_log(log: EventLog | LazyEventLog, *, min_history: int = 1, max_len: int | None = None,
                      context_columns: Sequence[str] = ()) -> NextEventExamples:
    """Every prefix of every user's sequence: history (last `max_len` actions) -> next action.

    Used to turn training events into examples; a user with n events gives n - min_history examples.
    """
    if min_history < 0 or (max_len is not None and max_len < 1):
        raise DataError(f"min_history must be >= 0 and max_len >= 1 (got {min_history}, {max_len})")
    columns = _context_columns(log, context_columns)
    builder = _ExampleBuilder(columns)
    for row in _user_groups(log, columns).iter_rows(named=True):
        actions = row[ACTION]
        for index in range(max(min_history, 0), len(actions)):
            start = 0 if max_len is None else max(0, index - max_len)
            builder.add(row[USER], list(actions[start:index]), actions[index], row, index)
    return builder.build()


# ---------------------------------------------------------------- splits


def leave_one_out(log: EventLog, min_events: int = 3, *, context_columns: Sequence[str] | None = None) -> SequenceSplit:
    """RecBole's leave-one-out ('LS', valid_and_test) split, per user in time order.

    train = all but the last 2 events; valid = (all but the last 2) -> 2nd-to-last;
    test = (all but the last) -> last. Users with fewer than `min_events` events have no valid/test
    example; all their events stay in train (they reveal nothing about any evaluated target).
    """
    if min_events < 3:
        raise DataError(f"min_events must be at least 3 (got {min_events})",
                        hint="Leave-one-out needs one train event, one validation and one test target per user.")
    columns = _context_columns(log, context_columns)
    # rank 0 = last event of the user, 1 = second to last, ... (stable: ties keep row order)
    ranked = log.frame.with_row_index("_row").sort([USER, log.time_column, "_row"], maintain_order=True)
    ranked = ranked.with_columns(
        (pl.len().over(USER) - 1 - pl.int_range(pl.len()).over(USER)).alias("_from_end"),
        pl.len().over(USER).alias("_n"),
    )
    keep = (pl.col("_n") < min_events) | (pl.col("_from_end") >= 2)
    train = log.with_frame(ranked.filter(keep).sort("_row").drop("_row", "_from_end", "_n"))
    evaluated = log.with_frame(ranked.filter(pl.col("_n") >= min_events).drop("_row", "_from_end", "_n"))
    return SequenceSplit(
        train=train,
        valid=_last_event_of_each(evaluated, columns, drop_from_end=1),
        test=_last_event_of_each(evaluated, columns),
    )


def temporal_cuts(log: EventLog, valid_ratio: float, test_ratio: float) -> tuple[Any, Any]:
    """(valid cut, test cut): the event-time quantiles at 1 - valid - test and 1 - test. Events at or
    after a cut belong to the later part (the one rule every temporal split here follows)."""
    times = log.frame.get_column(log.time_column).sort()
    n = times.len()
    return times[min(n - 1, int(n * (1 - valid_ratio - test_ratio)))], times[min(n - 1, int(n * (1 - test_ratio)))]


def temporal_split(log: EventLog, valid_ratio: float = 0.1, test_ratio: float = 0.1, *,
                   context_columns: Sequence[str] | None = None) -> SequenceSplit:
    """One global time cut for everybody: the oldest events train, the newest are evaluated.

    The cut times are the event-time quantiles at 1 - valid - test and 1 - test; events at or after
    a cut belong to the later part. Each valid/test event becomes one example whose history is all of
    the user's earlier events (train and, for test, validation events too: those are observed by then).
    Events without any earlier event of their user cannot be examples and are only counted as history.
    """
    if not (0 <= valid_ratio < 1 and 0 <= test_ratio < 1 and valid_ratio + test_ratio < 1):
        raise DataError(f"valid_ratio and test_ratio must be in [0, 1) with a sum below 1 (got {valid_ratio}, {test_ratio})")
    if log.n_events == 0:
        raise DataError("Cannot split an empty log", hint="Load a log with events.")
    valid_cut, test_cut = temporal_cuts(log, valid_ratio, test_ratio)
    time = pl.col(log.time_column)
    train = log.filter(time < valid_cut) if valid_ratio + test_ratio > 0 else log
    columns = _context_columns(log, context_columns)
    valid = _ExampleBuilder(columns)
    test = _ExampleBuilder(columns)
    for row in _user_groups(log, [log.time_column, *columns]).iter_rows(named=True):
        actions, stamps = row[ACTION], row[log.time_column]
        for index in range(1, len(actions)):
            if valid_ratio + test_ratio == 0 or stamps[index] < valid_cut:
                continue
            part = test if (test_ratio > 0 and stamps[index] >= test_cut) else valid
            part.add(row[USER], list(actions[:index]), actions[index], row, index)
    return SequenceSplit(train=train, valid=valid.build(), test=test.build())


def published_split(log: EventLog, column: str = SPLIT, *, context_columns: Sequence[str] | None = None) -> SequenceSplit:
    """A dataset's own split (SmartThings): rows marked 'train' train; each 'valid'/'test' sequence
    (one user_id) gives one example, all but its last event -> its last event."""
    if column not in log.frame.columns:
        raise DataError(f"The log has no '{column}' column", [Problem("missing", column=column)],
                        hint="Load a dataset that ships its own split, or use leave_one_out / temporal_split.")
    labels = log.frame.get_column(column)
    unknown = sorted(set(labels.drop_nulls().unique().to_list()) - {"train", "valid", "test"})
    problems = [Problem(f"unknown split label {label!r}", column=column) for label in unknown]
    if labels.null_count():
        problems.append(Problem(f"{labels.null_count()} rows have no split label", column=column))
    mixed = log.frame.group_by(USER).agg(pl.col(column).n_unique().alias("k")).filter(pl.col("k") > 1)
    if mixed.height:
        problems.append(Problem(f"{mixed.height} sequences have events in more than one split", column=USER))
    if problems:
        raise DataError("Invalid published split", problems, hint="Label every row train, valid or test; one label per user_id.")
    columns = _context_columns(log, context_columns)
    train, valid, test = published_parts(log, column)
    return SequenceSplit(train=train, valid=_last_event_of_each(valid, columns), test=_last_event_of_each(test, columns))


def published_parts(log: EventLog, column: str = SPLIT) -> tuple[EventLog, EventLog, EventLog]:
    """The rows a dataset's own split labels train, valid and test (a part is empty when no row has its label)."""
    if column not in log.frame.columns:
        raise DataError(f"The log has no '{column}' column", [Problem("missing", column=column)],
                        hint="Load a dataset that ships its own split (SmartThings).")
    return log.filter(pl.col(column) == "train"), log.filter(pl.col(column) == "valid"), log.filter(pl.col(column) == "test")


SPLIT_RULES: tuple[str, ...] = ("loo", "temporal", "published")


def split_rule(log: EventLog, how: str | None = None) -> str:
    """The split rule for `log`: `how` when given (checked), else the dataset's own split when it has one
    (a SPLIT column), else leave-one-out. Every command that splits a log decides here."""
    if how is None:
        return "published" if SPLIT in log.frame.columns else "loo"
    if how not in SPLIT_RULES:
        raise ConfigError(f"Unknown split {how!r}", hint=f"Use {', '.join(SPLIT_RULES[:-1])} or {SPLIT_RULES[-1]}.")
    if how == "published" and SPLIT not in log.frame.columns:
        raise ConfigError(f"The log has no published split (no '{SPLIT}' column)", hint="Use --split loo or --split temporal.")
    return how


def make_split(log: EventLog, how: str | None = None, *, context_columns: Sequence[str] | None = None) -> SequenceSplit:
    """The split `split_rule(log, how)` names: loo (`leave_one_out`), temporal (`temporal_split`, 10% valid
    and 10% test) or published (`published_split`)."""
    rules = {"loo": leave_one_out, "temporal": temporal_split, "published": published_split}
    return rules[split_rule(log, how)](log, context_columns=context_columns)


# ---------------------------------------------------------------- encoding for models


def pad_left(id_lists: Sequence[Sequence[int]], max_len: int, pad_id: int = 0) -> np.ndarray:
    """int64 [N, max_len]: keeps the LAST max_len ids of each list, left-padded with pad_id.

    Left padding keeps the most recent event in the last column, where sequence models read it.
    """
    if max_len < 1:
        raise DataError(f"max_len must be >= 1 (got {max_len})")
    out = np.full((len(id_lists), max_len), pad_id, dtype=np.int64)  # [N, max_len]
    for row, ids in enumerate(id_lists):
        tail = list(ids)[-max_len:]
        if tail:
            out[row, max_len - len(tail):] = tail
    return out


def encode_examples(examples: NextEventExamples, vocabulary: Vocabulary, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """([N, max_len] int64 history ids, left-padded with 0; [N] int64 target ids)."""
    ids = {action: vocabulary.id_of(action) for action in vocabulary.actions}
    unknown = sorted({a for h in examples.histories for a in h if a not in ids} | {t for t in examples.targets if t not in ids})
    if unknown:
        raise DataError(f"{len(unknown)} actions are not in the vocabulary",
                        [Problem(f"unknown action {a!r}") for a in unknown],
                        hint="Encode with the vocabulary of the log the examples came from.")
    histories = pad_left([[ids[a] for a in history] for history in examples.histories], max_len)
    targets = np.fromiter((ids[t] for t in examples.targets), dtype=np.int64, count=len(examples))  # [N]
    return histories, targets


# ---------------------------------------------------------------- windows and sessions


def windows(log: EventLog | LazyEventLog, length: int, stride: int | None = None) -> list[list[str]]:
    """Fixed-length windows of each user's actions (only full windows); stride defaults to length."""
    stride = length if stride is None else stride
    if length < 1 or stride < 1:
        raise DataError(f"length and stride must be >= 1 (got {length}, {stride})")
    out: list[list[str]] = []
    for actions in _user_groups(log).get_column(ACTION).to_list():
        out.extend(actions[start:start + length] for start in range(0, len(actions) - length + 1, stride))
    return out


def _require_timestamps(log: EventLog, what: str) -> None:
    if log.time_column != TIMESTAMP:
        raise DataError(f"{what} needs a log with timestamps, but this log only has positions",
                        hint="Use windows() for position-ordered logs.")


def _with_session(log: EventLog, session: pl.Expr | pl.Series) -> EventLog:
    """The log with a string session_id extra (replacing any earlier one)."""
    extras = {k: v for k, v in log.schema.extras.items() if k != SESSION} | {SESSION: "str"}
    schema = Schema.model_validate(log.schema.model_dump() | {"extras": extras})
    frame = log.frame.with_columns(session.alias(SESSION))
    return EventLog(frame, schema, log.vocabulary)


def sessions_by_day(log: EventLog) -> EventLog:
    """session_id = '<user>:<YYYY-MM-DD>' of the event's local date.

    The local date uses the log's `utc_offset_min` extra when it has one (Foursquare), else UTC.
    """
    _require_timestamps(log, "Sessions by day")
    stamp = pl.col(TIMESTAMP)
    if UTC_OFFSET_COLUMN in log.frame.columns:
        stamp = stamp + pl.duration(minutes=pl.col(UTC_OFFSET_COLUMN).fill_null(0))
    return _with_session(log, pl.format("{}:{}", pl.col(USER), stamp.dt.date().cast(pl.String)))


def sessions_by_gap(log: EventLog, gap: timedelta) -> EventLog:
    """A new session starts when more than `gap` passes since the user's previous event.

    session_id = '<user>:<k>' with k counting the user's sessions from 0.
    """
    _require_timestamps(log, "Sessions by gap")
    if gap <= timedelta(0):
        raise DataError(f"gap must be positive (got {gap})")
    starts = (pl.col(TIMESTAMP).diff().over(USER) > gap).fill_null(False).cast(pl.Int64)
    session = (
        log.frame.with_row_index("_row")
        .sort([USER, TIMESTAMP, "_row"], maintain_order=True)
        .with_columns(starts.cum_sum().over(USER).alias("_k"))
        .sort("_row")  # back to the log's row order
        .select(pl.format("{}:{}", pl.col(USER), pl.col("_k")))
        .to_series()
    )
    return _with_session(log, session)


# ---------------------------------------------------------------- cleaning filters


def _report(name: str, before: EventLog, after: EventLog, detail: str) -> FilterReport:
    users_before = before.n_users  # counting distinct users is the costly part on large logs: do it once if unchanged
    users_after = users_before if after.n_events == before.n_events else after.n_users
    return FilterReport(name, before.n_events, after.n_events, users_before, users_after, detail)


def _may_have_duplicates(log: EventLog) -> bool:
    """False only when no two rows can be equal: distinct 64-bit row hashes prove distinct rows.

    Hashing rows is several times cheaper than the exact string grouping `unique` does, and logs
    usually have no duplicates, so the exact pass runs only when some hashes collide.
    """
    return log.frame.hash_rows().n_unique() < log.n_events


def drop_exact_duplicates(log: EventLog) -> tuple[EventLog, FilterReport]:
    """Remove rows identical in every column (the first occurrence stays)."""
    kept = log.with_frame(log.frame.unique(maintain_order=True, keep="first")) if _may_have_duplicates(log) else log
    return kept, _report("drop_exact_duplicates", log, kept, f"{log.n_events - kept.n_events:,} duplicate events removed")


def drop_exact_duplicates_lazy(log: LazyEventLog) -> tuple[LazyEventLog, FilterReport]:
    """drop_exact_duplicates for a log that stays where it is, in memory that grows with the largest bucket of
    users (about USER_BUCKET_ROWS events), not with the log: the first occurrence of each row stays, and each
    user's events keep their order.

    Equal rows have the same user, so each bucket of users is deduplicated on its own. The buckets are counted
    first (one streaming pass each, as count_exact_duplicates), which gives the report and the result's size
    before anything reads the result. A log with no duplicates comes back as it is; otherwise the result reads
    the source once per bucket, one bucket after the other, so with more than one bucket (logs over
    USER_BUCKET_ROWS events) the rows of different users come out grouped by bucket, each bucket's rows in the
    source's order."""
    buckets = user_buckets(log.n_events)
    counts = _duplicates_per_bucket(log, buckets, pl.col(USER).n_unique().alias("users"))
    removed, users = int(counts.get_column("duplicates").sum()), int(counts.get_column("users").sum())
    kept = log
    if removed:
        parts = [log.frame.filter(in_user_bucket(bucket, buckets)) for bucket in range(buckets)]
        # Polars streams the parts of a concat one after the other: one bucket's rows are held at a time.
        frame = pl.concat([part.unique(maintain_order=True, keep="first") if duplicates else part
                           for part, duplicates in zip(parts, counts.get_column("duplicates"), strict=True)])
        kept = LazyEventLog(frame, log.schema, log.vocabulary, log.n_events - removed)
    return kept, _duplicates_report(log.n_events, removed, users)


def _duplicates_report(events: int, removed: int, users: int) -> FilterReport:
    """The report of the lazy duplicate filters: a user loses only repeats of rows that stay, never all of their
    events, so the users are the same before and after."""
    return FilterReport("drop_exact_duplicates", events, events - removed, users, users, f"{removed:,} duplicate events removed")


# Events per bucket of users that grouped_by_user holds in memory to sort. `data convert` of 100M generated
# events (bench/big_logs.py --stages convert): peak RSS 2.96 GB (2.85 GB anonymous) in 20 buckets, against 5.8 GB
# when it sorted buckets of 20M, and 2.4 GB (0.74 GB anonymous) writing the rows ungrouped; 124 s against 108 s.
# The peak still grows with the log (1.06 GB at 10M, 1.62 GB at 30M events; polars 2.1), for a reason not found
# yet: reading each sorted bucket on its own instead of through one concat still reached 1.21 GB at 30M.
GROUP_BUCKET_ROWS = 5_000_000
# Rows per batch of the pass that splits a larger log into its buckets.
SPLIT_BATCH_ROWS = 1 << 20


def grouped_by_user(log: LazyEventLog, spill: Path, *,
                    drop_duplicates: bool = False) -> tuple[LazyEventLog, FilterReport | None]:
    """The same events with each user's in one run of rows, in time order (ties in the source's order), as
    `data convert` writes them (users in the order of their ids' hash); with `drop_duplicates`, also without
    exact duplicate rows (as drop_exact_duplicates_lazy), and its report.

    A log of more than GROUP_BUCKET_ROWS events is first split by user into buckets of about that many events,
    in one streaming pass that writes each batch's share of each bucket under `spill` (which must stay until
    the result has been read); each bucket is then read back, deduplicated and sorted in turn. So the source is
    read once, whatever its size, and one bucket at a time is sorted (GROUP_BUCKET_ROWS gives the memory measured).

    Why: a Parquet file of runs of users stores the ids dictionary-encoded and reads faster than one of ids in
    arrival order. On 10M events of 1M users (`bench/loaders.py --clock cpu`, a fresh process per load, polars
    2.1): our load 0.54 s of CPU against 0.77 s, a bare pl.read_parquet 0.49 s against 0.57 s; convert took
    12.4 s of CPU against 6.5 s (two buckets, split first), with a peak RSS of 1.07 GB against 0.57 GB. Every
    reader of a log orders each user's events by time itself."""
    buckets = user_buckets(log.n_events, GROUP_BUCKET_ROWS)
    parts = [log] if buckets == 1 else _split_by_user(log, buckets, spill)
    report = None
    if drop_duplicates:
        kept = [drop_exact_duplicates_lazy(part) for part in parts]  # equal rows have the same user: per bucket
        parts = [part for part, _ in kept]
        report = _duplicates_report(log.n_events, sum(r.events_removed for _, r in kept),
                                    sum(r.users_before for _, r in kept))  # each user is in one bucket
    # One concat of the buckets, each sorted on its own (its peak memory: see GROUP_BUCKET_ROWS).
    frame = pl.concat([_user_grouped(part.frame, log.time_column) for part in parts])
    return LazyEventLog(frame, log.schema, log.vocabulary, sum(part.n_events for part in parts)), report


def _split_by_user(log: LazyEventLog, buckets: int, spill: Path) -> list[LazyEventLog]:
    """The log's users split into `buckets` by their ids' hash, as Parquet files under spill/<bucket>/ (one per
    batch of the source holding rows of that bucket); the non-empty buckets, each as a lazy log."""
    counts = [0] * buckets
    bucket = user_bucket(buckets).alias("_bucket")
    for index, batch in enumerate(log.frame.collect_batches(chunk_size=SPLIT_BATCH_ROWS)):
        for (number,), part in batch.with_columns(bucket).partition_by("_bucket", as_dict=True, include_key=False).items():
            folder = spill / f"{number:05d}"
            folder.mkdir(exist_ok=True)
            part.write_parquet(folder / f"{index:06d}.parquet", compression="lz4")
            counts[number] += part.height
    return [LazyEventLog(pl.scan_parquet(spill / f"{number:05d}" / "*.parquet"), log.schema, log.vocabulary, count)
            for number, count in enumerate(counts) if count]


def _user_grouped(part: pl.LazyFrame, time: str) -> pl.LazyFrame:
    """`part` (all of it in memory) in runs of users by their ids' hash, each run in time order, ties in order.

    Two stable single-key sorts on the collected frame: the lazy plan fuses consecutive sorts into one sort
    on (hash, time), 3.6x the CPU of the two (12.7 s against 3.5 s on 10M events, polars 2.1); a UDF node
    keeps them apart. Equal hashes of different ids only merge their runs: each user's order is unaffected."""
    def group(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.sort(time, maintain_order=True).sort(pl.col(USER).hash(seed=0), maintain_order=True)

    return part.map_batches(group, streamable=False)


def count_exact_duplicates(log: EventLog | LazyEventLog) -> int:
    """How many rows repeat an earlier row exactly (what drop_exact_duplicates removes), in bounded memory."""
    return int(_duplicates_per_bucket(log, user_buckets(log.n_events)).get_column("duplicates").sum())


def _duplicates_per_bucket(log: EventLog | LazyEventLog, buckets: int, *aggregates: pl.Expr) -> pl.DataFrame:
    """One row per bucket of users (in_user_bucket): "duplicates", its rows that repeat an earlier row exactly,
    and the `aggregates` over its rows.

    Equal rows have the same user, so the users are split into buckets (about USER_BUCKET_ROWS events each),
    one streaming pass per bucket: distinct row hashes in a bucket prove it has no duplicates; otherwise its
    rows are compared."""
    hashed = log.frame.lazy().with_columns(pl.struct(pl.all()).hash(seed=0).alias("_hash"))
    counts = []
    for bucket in range(buckets):
        rows = hashed.filter(in_user_bucket(bucket, buckets))
        sizes = rows.select(pl.len().alias("rows"), pl.col("_hash").n_unique().alias("hashes"), *aggregates).collect(engine="streaming")
        duplicates = 0
        if sizes.item(0, "hashes") < sizes.item(0, "rows"):  # some hashes repeat: compare the rows themselves
            distinct = rows.drop("_hash").unique().select(pl.len()).collect(engine="streaming").item()
            duplicates = sizes.item(0, "rows") - distinct
        counts.append(sizes.drop("rows", "hashes").with_columns(pl.lit(duplicates, pl.Int64).alias("duplicates")))
    return pl.concat(counts)


def k_core(log: EventLog, min_user_events: int, min_action_events: int) -> tuple[EventLog, FilterReport]:
    """Repeatedly drop users with < min_user_events and actions with < min_action_events events until
    neither changes (removing one can push the other below its minimum). The vocabulary shrinks too."""
    frame = log.frame
    rounds = 0
    while True:
        rounds += 1
        kept = frame.filter(
            (pl.len().over(USER) >= min_user_events) & (pl.len().over(ACTION) >= min_action_events)
        )
        if kept.height == frame.height:
            break
        frame = kept
    remaining = frame.get_column(ACTION).unique().to_list()
    filtered = EventLog(frame, log.schema, log.vocabulary.restricted_to(remaining))
    detail = (f"{len(log.vocabulary) - len(filtered.vocabulary)} actions dropped, "
              f"fixed point after {rounds} rounds")
    return filtered, _report(f"k_core(user>={min_user_events}, action>={min_action_events})", log, filtered, detail)


def value_threshold(log: EventLog, column: str, min_value: float) -> tuple[EventLog, FilterReport]:
    """Keep events whose numeric `column` is >= min_value (e.g. ratings >= 4); missing values are dropped."""
    if column not in log.frame.columns or not log.frame.schema[column].is_numeric():
        raise DataError(f"Column '{column}' is not a numeric column of the log", [Problem("not numeric or missing", column=column)],
                        hint=f"Numeric columns: {[c for c, t in log.frame.schema.items() if t.is_numeric()]}.")
    nulls = log.frame.get_column(column).null_count()
    kept = log.filter(pl.col(column) >= min_value)
    return kept, _report(f"value_threshold({column}>={min_value})", log, kept, f"{nulls:,} events had no {column}")


def _as_utc(value: datetime | date | int) -> datetime | int:
    """Naive datetimes and dates are read as UTC, matching how the log stores timestamps."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


def time_range(log: EventLog, start: datetime | date | int | None, end: datetime | date | int | None) -> tuple[EventLog, FilterReport]:
    """Keep events with start <= time < end (either bound may be None). Positions take int bounds."""
    problems = []
    for name, bound in (("start", start), ("end", end)):
        if bound is None:
            continue
        is_time = isinstance(bound, (datetime, date))
        if is_time != (log.time_column == TIMESTAMP):
            problems.append(Problem(f"{name}={bound!r} does not match the log's time kind '{log.time_column}'"))
    if problems:
        raise DataError("Invalid time range", problems, hint="Use datetimes for timestamp logs and integers for position logs.")
    condition = pl.lit(True)
    if start is not None:
        condition = condition & (pl.col(log.time_column) >= _as_utc(start))
    if end is not None:
        condition = condition & (pl.col(log.time_column) < _as_utc(end))
    kept = log.filter(condition)
    return kept, _report("time_range", log, kept, f"[{start}, {end})")
