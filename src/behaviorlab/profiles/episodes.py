"""Episodes: fixed-length pieces of one user's events with their weekday and 3-hour bin.

Profiles, compression and generation all look at a log the same way: a user's events in time order,
cut into consecutive episodes of `length` events. Each event keeps its weekday (0 = Mon) and hour bin
(0 = "(0~3)" .. 7 = "(21~24)") when the log says when it happened: from `weekday` / `hour_bin` extras
(SmartThings publishes only these), else from the timestamp (shifted by `utc_offset_min` when the log
carries the user's local offset), else no time at all (position-only logs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from behaviorlab.schema import ACTION, HOUR_BINS, TIMESTAMP, USER, WEEKDAYS, EventLog

WEEKDAY_COLUMN = "weekday"
HOUR_BIN_COLUMN = "hour_bin"
UTC_OFFSET_COLUMN = "utc_offset_min"
N_BINS = len(HOUR_BINS)


@dataclass(frozen=True)
class Event:
    action: str
    weekday: int | None = None  # 0..6, Monday first
    hour_bin: int | None = None  # 0..7, three hours each

    @property
    def week_slot(self) -> int | None:
        """weekday * 8 + hour bin: one of the 56 slots of a week, or None without time."""
        if self.weekday is None or self.hour_bin is None:
            return None
        return self.weekday * N_BINS + self.hour_bin


@dataclass(frozen=True)
class Episode:
    user: str
    index: int  # which consecutive piece of the user's history
    events: tuple[Event, ...]

    @property
    def key(self) -> str:
        """Names the real record, e.g. in the manifest's list of exemplars that entered prompts."""
        return f"{self.user}#{self.index}"

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(e.action for e in self.events)

    @property
    def has_time(self) -> bool:
        return all(e.week_slot is not None for e in self.events)


def log_has_time(log: EventLog) -> bool:
    """Whether events of this log can be placed in a weekday and hour bin."""
    extras = log.schema.extras
    return (WEEKDAY_COLUMN in extras and HOUR_BIN_COLUMN in extras) or log.time_column == TIMESTAMP


def _time_columns(log: EventLog) -> tuple[pl.Expr, pl.Expr] | None:
    """Expressions giving weekday 0..6 and hour bin 0..7 per row, or None for position-only logs."""
    extras = log.schema.extras
    if extras.get(WEEKDAY_COLUMN) == "str" and extras.get(HOUR_BIN_COLUMN) == "str":
        weekday = pl.col(WEEKDAY_COLUMN).replace_strict(list(WEEKDAYS), list(range(7)), default=None)
        hour_bin = pl.col(HOUR_BIN_COLUMN).replace_strict(list(HOUR_BINS), list(range(N_BINS)), default=None)
        return weekday, hour_bin
    if log.time_column == TIMESTAMP:
        local = pl.col(TIMESTAMP)
        if extras.get(UTC_OFFSET_COLUMN) == "int":
            local = local + pl.duration(minutes=pl.col(UTC_OFFSET_COLUMN).fill_null(0))
        return local.dt.weekday() - 1, local.dt.hour() // 3
    return None


def iter_user_events(log: EventLog) -> Iterator[tuple[str, list[Event]]]:
    """Each user's events in time order (ties keep the log's row order), users in first-seen order."""
    columns = _time_columns(log)
    frame = log.frame.sort([USER, log.time_column], maintain_order=True)
    if columns is None:
        frame = frame.select(USER, ACTION, pl.lit(None, pl.Int64).alias("_wd"), pl.lit(None, pl.Int64).alias("_hb"))
    else:
        frame = frame.select(USER, ACTION, columns[0].cast(pl.Int64).alias("_wd"), columns[1].cast(pl.Int64).alias("_hb"))
    grouped = frame.group_by(USER, maintain_order=True).agg(pl.col(ACTION), pl.col("_wd"), pl.col("_hb"))
    for user, actions, weekdays, bins in grouped.iter_rows():
        yield user, [Event(a, w, b) for a, w, b in zip(actions, weekdays, bins, strict=True)]


def episodes_from_log(log: EventLog, length: int, *, min_length: int = 2) -> list[Episode]:
    """Every user's history cut into consecutive episodes of `length` events.

    A last piece shorter than `length` is kept when it has at least `min_length` events, so short
    users still count.
    """
    episodes: list[Episode] = []
    for user, events in iter_user_events(log):
        for index, start in enumerate(range(0, len(events), length)):
            piece = events[start:start + length]
            if len(piece) >= min_length:
                episodes.append(Episode(user, index, tuple(piece)))
    return episodes


def real_windows(log: EventLog, length: int) -> set[tuple[str, ...]]:
    """Every window of `length` consecutive actions of every user: what a copy would be equal to."""
    windows: set[tuple[str, ...]] = set()
    for _, events in iter_user_events(log):
        actions = tuple(e.action for e in events)
        for start in range(max(len(actions) - length, 0) + 1):
            window = actions[start:start + length]
            if len(window) == length:
                windows.add(window)
    return windows
