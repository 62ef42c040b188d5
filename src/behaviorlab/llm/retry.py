"""When and how long to wait before retrying a request: exponential backoff with jitter, Retry-After honoured."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass
class RetryPolicy:
    """`max_retries` retries after the first attempt; waits grow as base * 2**(attempt-1), capped, jittered."""

    max_retries: int = 4
    base_s: float = 1.0
    max_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Jitter draws the wait uniformly from [half, all] of the exponential step so that many clients
        that failed together do not retry together. A server's Retry-After is a floor: it said when it
        will accept again, so we never come back sooner (but never wait longer than `max_s`).
        """
        step = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        wait = step * self.rng.uniform(0.5, 1.0)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_s))
        return wait

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def backoff_total_s(self) -> float:
        """The most the waits between all attempts add up to, unless a server's Retry-After asks for more."""
        return sum(min(self.max_s, self.base_s * 2 ** (attempt - 1)) for attempt in range(1, self.attempts))

    def worst_case_s(self, attempt_s: float) -> float:
        """The longest a call can take before it is given up, when each attempt may last `attempt_s`."""
        return self.attempts * attempt_s + self.backoff_total_s()


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: either delta-seconds or an HTTP date; None when absent/unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
