"""Per-second measurement slices kept for the last 15 minutes, and their aggregation over a window.

The router records into a ``Series`` (one per environment × release × instance) on its hot path: a few
integer increments and one dict update per request. The finished seconds sit in a ring; ``window()``
folds the slices of the last N seconds into a ``WindowStats``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from shipyard.primitives.metrics.histogram import Histogram, bucket_index

RETENTION_S = 15 * 60


class Slice:
    """One second of one series. ``status[k]`` counts responses of class k xx (index 0: no response)."""

    __slots__ = ("sec", "status", "upstream_errors", "retried", "bytes_in", "bytes_out", "hist", "lat_sum")

    def __init__(self, sec: int) -> None:
        self.sec = sec
        self.status = [0, 0, 0, 0, 0, 0]
        self.upstream_errors = 0
        self.retried = 0  # failed attempts on this instance whose request was retried elsewhere
        self.bytes_in = 0
        self.bytes_out = 0
        self.hist: dict[int, int] = {}
        self.lat_sum = 0.0


class Series:
    """Measurements of one env × release × instance: current slice, ring of past ones, cumulative totals."""

    __slots__ = ("env", "release", "instance", "inflight", "_cur", "_ring", "codes", "hist_total", "lat_sum_total",
                 "upstream_errors_total", "bytes_in_total", "bytes_out_total")

    def __init__(self, env: str, release: str, instance: str) -> None:
        self.env = env
        self.release = release
        self.instance = instance
        self.inflight = 0
        self._cur = Slice(0)
        self._ring: deque[Slice] = deque(maxlen=RETENTION_S + 1)
        # Cumulative since start, for Prometheus counters.
        self.codes: dict[int, int] = {}
        self.hist_total: dict[int, int] = {}
        self.lat_sum_total = 0.0
        self.upstream_errors_total = 0
        self.bytes_in_total = 0
        self.bytes_out_total = 0

    def _slice(self, sec: int) -> Slice:
        cur = self._cur
        if cur.sec != sec:
            if cur.sec:
                self._ring.append(cur)
            cur = self._cur = Slice(sec)
        return cur

    def record(
        self, sec: int, status: int, latency: float, bytes_in: int, bytes_out: int, upstream_error: bool = False
    ) -> None:
        """One finished request. ``status`` 0 means no response was sent (client went away)."""
        cur = self._cur if self._cur.sec == sec else self._slice(sec)
        cls = status // 100
        cur.status[cls if 0 < cls < 6 else 0] += 1
        if upstream_error:
            cur.upstream_errors += 1
            self.upstream_errors_total += 1
        cur.bytes_in += bytes_in
        cur.bytes_out += bytes_out
        b = bucket_index(latency)
        h = cur.hist
        h[b] = h.get(b, 0) + 1
        cur.lat_sum += latency
        codes = self.codes
        codes[status] = codes.get(status, 0) + 1
        ht = self.hist_total
        ht[b] = ht.get(b, 0) + 1
        self.lat_sum_total += latency
        self.bytes_in_total += bytes_in
        self.bytes_out_total += bytes_out

    def note_upstream_error(self, sec: int) -> None:
        """A failure talking to the instance that did not end a request here (it was retried elsewhere)."""
        cur = self._cur if self._cur.sec == sec else self._slice(sec)
        cur.upstream_errors += 1
        cur.retried += 1
        self.upstream_errors_total += 1

    def finished_between(self, first_sec: int, end_sec: int) -> list[Slice]:
        """Slices of the whole seconds in ``[first_sec, end_sec)``, oldest first (seconds with no request
        have no slice)."""
        out = [s for s in self._ring if first_sec <= s.sec < end_sec]
        if first_sec <= self._cur.sec < end_sec:
            out.append(self._cur)
        return out

    def slices_since(self, first_sec: int) -> list[Slice]:
        out = [s for s in reversed(self._ring) if s.sec >= first_sec]
        if self._cur.sec >= first_sec:
            out.append(self._cur)
        return out


@dataclass
class WindowStats:
    """Aggregate of slices over a window; ``to_json()`` is the shape sent in ``stats`` replies."""

    window_s: float
    status: list[int] = field(default_factory=lambda: [0] * 6)
    upstream_errors: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    lat_sum: float = 0.0
    inflight: int = 0
    hist: Histogram = field(default_factory=Histogram)

    def add_slices(self, slices: list[Slice]) -> None:
        for s in slices:
            for k in range(6):
                self.status[k] += s.status[k]
            self.upstream_errors += s.upstream_errors
            self.bytes_in += s.bytes_in
            self.bytes_out += s.bytes_out
            self.lat_sum += s.lat_sum
            self.hist.add_counts(s.hist)

    def add(self, other: WindowStats) -> None:
        for k in range(6):
            self.status[k] += other.status[k]
        self.upstream_errors += other.upstream_errors
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.lat_sum += other.lat_sum
        self.inflight += other.inflight
        self.hist.merge(other.hist)

    @property
    def requests(self) -> int:
        return sum(self.status)

    @property
    def errors(self) -> int:
        """Server-side failures: 5xx responses plus requests that got no response."""
        return self.status[5] + self.status[0]

    def to_json(self) -> dict[str, Any]:
        n = self.requests
        h = self.hist
        return {
            "requests": n,
            "status": {"1xx": self.status[1], "2xx": self.status[2], "3xx": self.status[3],
                       "4xx": self.status[4], "5xx": self.status[5], "none": self.status[0]},
            "errors": self.errors,
            "error_rate": (self.errors / n) if n else 0.0,
            "upstream_errors": self.upstream_errors,
            "inflight": self.inflight,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rate": n / self.window_s if self.window_s > 0 else 0.0,
            "mean": (self.lat_sum / n) if n else None,
            "p50": h.quantile(0.50),
            "p95": h.quantile(0.95),
            "p99": h.quantile(0.99),
            "histogram": h.pairs(),
        }


def window_of(series: Series, now_sec: int, window_s: float) -> WindowStats:
    """Aggregate of the last ``window_s`` seconds, including the current (partial) second."""
    w = WindowStats(window_s=window_s)
    first = now_sec - max(1, int(window_s)) + 1
    w.add_slices(series.slices_since(first))
    w.inflight = series.inflight
    return w


def slice_json(s: Slice) -> dict[str, Any]:
    """One second of one instance, as the router's ``slices`` op sends it (the analysis reads these)."""
    return {"sec": s.sec, "status": list(s.status), "upstream_errors": s.upstream_errors, "retried": s.retried,
            "histogram": sorted(s.hist.items())}
