"""Shared helpers for the analysis tests: a log-linear bucket layout like the router's, sample builders
and a seeded traffic simulator (numpy is a test-only dependency, via scipy)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shipyard.engine.analysis.measurements import Sample, bounds_from_edges, bucket_of


def log_linear_edges(lo_exp: int = -14, hi_exp: int = 7, sub: int = 32) -> list[float]:
    """Powers of two split into `sub` equal buckets: edges at exactly 0.5 s and 2 s, width ≤ 1/sub."""
    edges: list[float] = [0.0]
    for k in range(lo_exp, hi_exp):
        base = 2.0**k
        edges += [base + base * i / sub for i in range(sub)]
    edges.append(2.0**hi_exp)
    return edges


EDGES = log_linear_edges()
BOUNDS = bounds_from_edges(EDGES)


def hist(latencies: Iterable[float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in latencies:
        i = bucket_of(EDGES, v)
        out[i] = out.get(i, 0) + 1
    return out


def sample(t: int, release: str = "r1", *, requests: int = 0, errors: int = 0,
           latencies: Sequence[float] = (), instance: str | None = None, **kw: object) -> Sample:
    return Sample(t=t, release=release, instance=instance, requests=requests, errors=errors,
                  latency=hist(latencies), **kw)  # type: ignore[arg-type]


def steady(release: str, start: int, end: int, *, rps: int = 10, error_every: int = 0,
           latency: float = 0.05, instance: str | None = None) -> list[Sample]:
    """One sample per second: `rps` requests at a fixed latency, every `error_every`-th second all errors."""
    out = []
    for t in range(start, end):
        errors = rps if error_every and t % error_every == 0 else 0
        out.append(sample(t, release, requests=rps, errors=errors, latencies=[latency] * rps,
                          instance=instance))
    return out


class Traffic:
    """Seeded per-second traffic of one release: fixed request count, binomial errors, lognormal latency."""

    def __init__(self, rng: np.random.Generator, release: str, rps: int, error_rate: float,
                 median: float = 0.020, sigma: float = 0.5, shift: float = 0.0) -> None:
        self.rng, self.release, self.rps = rng, release, rps
        self.error_rate, self.median, self.sigma, self.shift = error_rate, median, sigma, shift
        self._edges = np.asarray(EDGES)

    def second(self, t: int) -> Sample:
        n = int(self.rng.poisson(self.rps))
        errors = int(self.rng.binomial(n, self.error_rate)) if n else 0
        lat = self.rng.lognormal(np.log(self.median), self.sigma, n) + self.shift
        idx = np.clip(np.searchsorted(self._edges, lat, side="right") - 1, 0, len(self._edges) - 1)
        uniq, counts = np.unique(idx, return_counts=True)
        return Sample(t=t, release=self.release, requests=n, errors=errors,
                      latency={int(i): int(c) for i, c in zip(uniq, counts, strict=True)})
