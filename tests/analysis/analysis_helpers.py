"""Shared helpers for the analysis tests: sample builders on the router's (the one) bucket layout and a
seeded traffic simulator (numpy is a test-only dependency, via scipy)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from shipyard.engine.analysis.measurements import Sample
from shipyard.primitives.metrics import MAX_VALUE, MIN_VALUE, NUM_BUCKETS, SUB_BUCKETS, bucket_index


def hist(latencies: Iterable[float]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in latencies:
        i = bucket_index(v)
        out[i] = out.get(i, 0) + 1
    return out


def bucket_indices(lat: np.ndarray) -> np.ndarray:
    """``bucket_index`` over an array (the simulator draws thousands of latencies a second)."""
    m, e = np.frexp(np.clip(lat, MIN_VALUE, MAX_VALUE))
    lowest_e = int(np.frexp(MIN_VALUE)[1])
    idx = (e - lowest_e) * SUB_BUCKETS + ((m - 0.5) * (2 * SUB_BUCKETS)).astype(np.int64)
    return np.clip(idx, 0, NUM_BUCKETS - 1)


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

    def second(self, t: int) -> Sample:
        n = int(self.rng.poisson(self.rps))
        errors = int(self.rng.binomial(n, self.error_rate)) if n else 0
        lat = self.rng.lognormal(np.log(self.median), self.sigma, n) + self.shift
        idx = bucket_indices(lat)
        uniq, counts = np.unique(idx, return_counts=True)
        return Sample(t=t, release=self.release, requests=n, errors=errors,
                      latency={int(i): int(c) for i, c in zip(uniq, counts, strict=True)})
