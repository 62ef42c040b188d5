"""Counters and histograms for GET /metrics, rendered in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Cumulative-bucket histogram: counts[i] observations <= buckets[i] (the last counts all)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last slot is +Inf
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: Labels) -> list[str]:
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {running}")
        return out + [f"{name}_sum{_labels(labels)} {self.total:.6f}", f"{name}_count{_labels(labels)} {self.n}"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}" if labels else ""


class Metrics:
    """What the service counts; thread-safe (the compute thread reports batch sizes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[Labels] = Counter()        # (route, method, status)
        self.latency: dict[Labels, Histogram] = {}        # (route)
        self.batches: dict[Labels, Histogram] = {}        # (model)
        self.events: Counter[Labels] = Counter()          # (event): reloads, reload failures, 429s, ...
        self.gauges: dict[str, tuple[str, Callable[[], Mapping[Labels, float]]]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(("route", route), ("method", method), ("status", str(status)))] += 1
            self.latency.setdefault((("route", route),), Histogram(LATENCY_BUCKETS_S)).observe(seconds)

    def observe_batch(self, model: str, size: int) -> None:
        with self._lock:
            self.batches.setdefault((("model", model),), Histogram(BATCH_BUCKETS)).observe(size)

    def count(self, event: str) -> None:
        with self._lock:
            self.events[(("event", event),)] += 1

    def gauge(self, name: str, help_text: str, read: Callable[[], Mapping[Labels, float]]) -> None:
        """A value read at scrape time (queue depths)."""
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP behaviorlab_requests_total HTTP requests by route, method and status.",
                     "# TYPE behaviorlab_requests_total counter"]
            lines += [f"behaviorlab_requests_total{_labels(k)} {v}" for k, v in sorted(self.requests.items())]
            lines += ["# HELP behaviorlab_request_duration_seconds Time from request to response, by route.",
                      "# TYPE behaviorlab_request_duration_seconds histogram"]
            for key, histogram in sorted(self.latency.items()):
                lines += histogram.lines("behaviorlab_request_duration_seconds", key)
            lines += ["# HELP behaviorlab_batch_size /predict or /score requests answered by one batched call, by model.",
                      "# TYPE behaviorlab_batch_size histogram"]
            for key, histogram in sorted(self.batches.items()):
                lines += histogram.lines("behaviorlab_batch_size", key)
            lines += ["# HELP behaviorlab_events_total Service events: reloads, failed reloads, refused /generate requests.",
                      "# TYPE behaviorlab_events_total counter"]
            lines += [f"behaviorlab_events_total{_labels(k)} {v}" for k, v in sorted(self.events.items())]
        for name, (help_text, read) in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(read().items())]
        return "\n".join(lines) + "\n"
