"""Measurements the analysis reads: one ``Sample`` per second per release (and per instance).

Where they come from (the collector in the control plane fills them; nothing here does I/O):

- traffic — the router's ``stats`` op, per release and per instance, in 1-second slices: requests,
  errors (5xx answers + upstream failures), requests by status class, latency histogram counts;
- resources — the supervisor: CPU (in cores: 1.0 = one core busy) and resident memory (bytes) per
  instance, with the memory it may use (its limit, or the machine's total memory when it has none);
- health — the health checker: consecutive failed checks of an instance at the end of that second.

Rules the collector must keep (the window semantics depend on them):

- ``Sample.t`` is a whole second: the sample covers ``[t, t + 1)``.
- A second the collector knows about gets a sample *even when nothing happened* (``requests=0``).
  A missing second means "no data" (router or collector down), and conditions do not fire on no data.
- Latency histograms are sparse ``{bucket_index: count}`` in the one bucket layout of
  ``shipyard.primitives.metrics`` (the router's); quantiles come from its ``quantile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from shipyard.primitives.metrics import BucketCounts, bucket_bounds, merge_counts, quantile

# What callers in control/ still pass as ``bounds`` (the router's ``bucket_bounds``). There is one
# bucket layout now, so the parameter only guards against another one; alias until control/ is moved.
BucketBounds = Callable[[int], tuple[float, float]]


def check_layout(bounds: BucketBounds | None) -> None:
    """Accept ``bounds`` only when it is the one layout (or None): anything else would be misread."""
    if bounds is not None and bounds is not bucket_bounds:
        raise ValueError("latency histograms use the router's bucket layout (shipyard.primitives.metrics); "
                         "pass no bounds")


@dataclass(frozen=True)
class Sample:
    """What happened to one release (``instance=None``) or one instance during second ``t``."""

    t: int
    release: str
    instance: str | None = None
    requests: int = 0
    errors: int = 0
    status: Mapping[str, int] = field(default_factory=dict)  # "2xx": n, "5xx": n, …
    latency: BucketCounts = field(default_factory=dict)
    cpu: float | None = None  # cores
    rss: int | None = None  # bytes
    memory_limit: int | None = None  # bytes: the instance's limit, or the machine's total memory
    health_failures: int | None = None  # consecutive failed health checks at the end of the second
    restarts: int | None = None  # restarts (crashes, failed liveness) since the analysis began

    @property
    def memory_share(self) -> float | None:
        if self.rss is None or not self.memory_limit:
            return None
        return self.rss / self.memory_limit


def rollup(samples: Iterable[Sample]) -> list[Sample]:
    """Release-level samples from instance-level ones: traffic and memory are summed, CPU summed,
    health failures take the worst instance. Release-level samples in the input are kept as they are
    (and win over a rollup of the same second)."""
    given: dict[tuple[str, int], Sample] = {}
    parts: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        key = (s.release, s.t)
        if s.instance is None:
            given[key] = s
        else:
            parts.setdefault(key, []).append(s)
    out = dict(given)
    for key, group in parts.items():
        if key in out:
            continue
        status: dict[str, int] = {}
        for s in group:
            for k, n in s.status.items():
                status[k] = status.get(k, 0) + n
        cpus = [s.cpu for s in group if s.cpu is not None]
        rss = [s.rss for s in group if s.rss is not None]
        health = [s.health_failures for s in group if s.health_failures is not None]
        restarts = [s.restarts for s in group if s.restarts is not None]
        out[key] = Sample(
            t=key[1],
            release=key[0],
            requests=sum(s.requests for s in group),
            errors=sum(s.errors for s in group),
            status=status,
            latency=merge_counts(s.latency for s in group),
            cpu=sum(cpus) if cpus else None,
            rss=sum(rss) if rss else None,
            health_failures=max(health) if health else None,
            restarts=max(restarts) if restarts else None,
        )
    return sorted(out.values(), key=lambda s: (s.release, s.t))


@dataclass(frozen=True)
class Window:
    """Samples of one scope (a release, or one instance) over the whole seconds ``[start, end)``.

    Built with ``Window.of``; at most one sample per second (a later duplicate replaces an earlier).
    """

    start: int
    end: int
    by_second: Mapping[int, Sample]

    @classmethod
    def of(cls, samples: Iterable[Sample], start: int, end: int) -> Window:
        if end < start:
            raise ValueError(f"window end {end} is before its start {start}")
        return cls(start, end, {s.t: s for s in samples if start <= s.t < end})

    def sub(self, start: int, end: int) -> Window:
        start, end = max(start, self.start), min(end, self.end)
        if end <= start:
            return Window(start, start, {})
        if end - start < len(self.by_second):
            picked = {t: self.by_second[t] for t in range(start, end) if t in self.by_second}
        else:
            picked = {t: s for t, s in self.by_second.items() if start <= t < end}
        return Window(start, end, picked)

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def covered(self) -> int:
        """Seconds of the window that have a sample."""
        return len(self.by_second)

    @property
    def coverage(self) -> float:
        return self.covered / self.seconds if self.seconds else 0.0

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.by_second.values())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.by_second.values())

    @property
    def error_rate(self) -> float | None:
        n = self.requests
        return self.errors / n if n else None

    @property
    def request_rate(self) -> float | None:
        """Requests per second over the seconds that have data."""
        return self.requests / self.covered if self.covered else None

    @property
    def histogram(self) -> dict[int, int]:
        return merge_counts(s.latency for s in self.by_second.values())

    def latency(self, q: float) -> float | None:
        """The q-quantile (seconds) of the window's latency histogram; None without responses."""
        return quantile(self.histogram, q)

    @property
    def cpu(self) -> float | None:
        """Mean CPU (cores) over the readings in the window."""
        vals = [s.cpu for s in self.by_second.values() if s.cpu is not None]
        return sum(vals) / len(vals) if vals else None

    @property
    def memory_share(self) -> float | None:
        """Mean share of the memory limit over the readings in the window."""
        vals = [v for s in self.by_second.values() if (v := s.memory_share) is not None]
        return sum(vals) / len(vals) if vals else None

    @property
    def health_failures(self) -> int | None:
        """The latest reading of consecutive failed health checks."""
        return self._latest("health_failures")

    @property
    def restarts(self) -> int | None:
        """The latest reading of restarts since the analysis began."""
        return self._latest("restarts")

    def _latest(self, name: str) -> int | None:
        for t in sorted(self.by_second, reverse=True):
            v = getattr(self.by_second[t], name)
            if v is not None:
                return int(v)
        return None
