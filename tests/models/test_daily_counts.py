"""Daily event counts: the count matrix, the honest tails, ARIMA order choice (the neural forecaster against the
baselines: tests/evaluate/test_timing.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from behaviorlab.errors import DataError
from behaviorlab.models.daily_counts import (
    DailyCountsConfig,
    arima_forecast,
    daily_count_matrix,
    select_users,
)
from behaviorlab.schema import EventLog, Schema

START = datetime(2024, 1, 1, 12, tzinfo=UTC)  # a Monday


def log_from_counts(counts: np.ndarray, offsets: list[int] | None = None) -> EventLog:
    """counts [U, D]: user u has counts[u, d] events at noon UTC of day d."""
    users, stamps = [], []
    for u, row in enumerate(counts):
        for d, n in enumerate(row):
            users += [f"u{u}"] * int(n)
            stamps += [START + timedelta(days=d, minutes=i) for i in range(int(n))]
    frame = pl.DataFrame({"user_id": users, "timestamp": stamps, "action": ["x"] * len(users)})
    schema = Schema(name="counts")
    if offsets is not None:
        frame = frame.with_columns(pl.Series("utc_offset_min", [offsets[int(u[1:])] for u in users], dtype=pl.Int64))
        schema = Schema(name="counts", extras={"utc_offset_min": "int"})
    return EventLog(frame.with_columns(pl.col("timestamp").dt.cast_time_unit("us")), schema)


def weekly_counts(n_users: int = 16, weeks: int = 10, seed: int = 0) -> np.ndarray:
    """Busy weekends, quiet weekdays, each user at their own level, Poisson noise."""
    rng = np.random.default_rng(seed)
    shape = np.array([1, 1, 1, 1, 2, 8, 8], dtype=float)
    level = rng.uniform(0.5, 2.0, size=(n_users, 1))
    return rng.poisson(level * np.tile(shape, weeks))


def test_count_matrix_keeps_empty_days_and_uses_the_local_day():
    counts = np.array([[2, 0, 3], [0, 1, 0]])
    data = daily_count_matrix(log_from_counts(counts))
    assert data.users == ["u0", "u1"] and data.days == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert np.array_equal(data.counts, counts)
    shifted = daily_count_matrix(log_from_counts(counts, offsets=[13 * 60, 0]))  # noon UTC + 13 h = next local day
    assert shifted.days == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert shifted.counts[0].tolist() == [2, 0, 3] and shifted.counts[1].tolist() == [1, 0, 0]


def test_users_need_events_before_the_tails_and_enough_days():
    counts = np.zeros((3, 40))
    counts[0, :26] = 1          # 26 events before the two 7-day tails
    counts[1, 30:] = 5          # all of them inside the tails: left out
    counts[2, :5] = 1
    data = select_users(daily_count_matrix(log_from_counts(counts)), DailyCountsConfig(min_events=5))
    assert data.users == ["u0", "u2"]
    with pytest.raises(DataError, match="at least"):
        select_users(daily_count_matrix(log_from_counts(counts[:, :20])), DailyCountsConfig())


def test_arima_order_is_chosen_on_validation():
    counts = weekly_counts(n_users=4, weeks=8)
    data = select_users(daily_count_matrix(log_from_counts(counts)), DailyCountsConfig())
    config = DailyCountsConfig(arima_orders=((1, 0, 0), (2, 0, 0)))  # AR-only fits are fast
    result = arima_forecast(data, config)
    assert result.order == min(config.arima_orders, key=lambda o: result.validation_mae[str(o)])
    assert result.forecast.shape == (4, 7) and (result.forecast >= 0).all() and result.arima_failures == 0
