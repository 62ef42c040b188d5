import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from behaviorlab.llm.retry import RetryPolicy, parse_retry_after


def test_delays_grow_exponentially_within_jitter_bounds_and_are_capped():
    policy = RetryPolicy(max_retries=10, base_s=1.0, max_s=8.0, rng=random.Random(0))
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (6, 8.0)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jittered, not a fixed schedule


def test_retry_after_is_a_floor_but_capped():
    policy = RetryPolicy(base_s=0.01, max_s=5.0, rng=random.Random(0))
    assert policy.delay(1, retry_after_s=2.0) == 2.0
    assert policy.delay(1, retry_after_s=100.0) == 5.0


def test_parse_retry_after_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
