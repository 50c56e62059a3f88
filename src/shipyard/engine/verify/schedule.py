"""When each request is due: constant arrival rate, optionally after a linear ramp from zero.

Pure arithmetic, so the generator's open model is testable without sockets. Request ``i`` is due at
``time_of(i)`` seconds after the start; with a ramp of ``R`` s the rate rises linearly from 0 to
``rate``, so the first ``rate·R/2`` requests fall in the ramp and the rest are spaced ``1/rate`` apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    rate: float  # requests per second once ramped up
    duration: float  # seconds at full rate (the judged part of the run)
    ramp: float = 0.0  # seconds of linear ramp before it (not judged)

    @property
    def ramp_requests(self) -> float:
        return self.rate * self.ramp / 2.0

    @property
    def total(self) -> int:
        """How many requests the run sends: every ``i`` due strictly before ``ramp + duration``."""
        return max(0, math.ceil(self.ramp_requests + self.rate * self.duration - 1e-9))

    @property
    def end(self) -> float:
        return self.ramp + self.duration

    def time_of(self, i: int) -> float:
        r = self.ramp_requests
        if i < r:
            return math.sqrt(2.0 * self.ramp * i / self.rate)
        return self.ramp + (i - r) / self.rate

    def due_by(self, elapsed: float) -> int:
        """How many requests are due at or before ``elapsed`` seconds (capped at ``total``)."""
        if elapsed < 0:
            return 0
        if elapsed < self.ramp:
            n = math.floor(self.rate * elapsed * elapsed / (2.0 * self.ramp) + 1e-9) + 1
        else:
            n = math.floor(self.ramp_requests + self.rate * (elapsed - self.ramp) + 1e-9) + 1
        return min(n, self.total)
