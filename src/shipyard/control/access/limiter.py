"""Failed token attempts, limited per client address: a token bucket on the control plane's clock.

Each address may fail ``burst`` times at once, then once every ``per`` seconds; beyond that it is answered
429 with Retry-After until a token refills — even with a right token, so guessing gains nothing. Only
failures spend; a successful call costs nothing.
"""

from __future__ import annotations

from shipyard.errors import RateLimited
from shipyard.primitives.clock import Clock

MAX_ADDRESSES = 10_000  # bounded memory: the oldest address is forgotten first


class FailureLimiter:
    def __init__(self, clock: Clock, *, burst: int = 10, per: float = 6.0) -> None:
        self.clock, self.burst, self.per = clock, burst, per
        self._buckets: dict[str, tuple[float, float]] = {}  # address → (tokens, at monotonic)

    def _level(self, address: str) -> float:
        tokens, at = self._buckets.get(address, (float(self.burst), self.clock.monotonic()))
        return min(float(self.burst), tokens + (self.clock.monotonic() - at) / self.per)

    def check(self, address: str) -> None:
        """Raise ``RateLimited`` when ``address`` has no failure left to spend."""
        level = self._level(address)
        if level < 1.0:
            wait = (1.0 - level) * self.per
            raise RateLimited(f"too many failed token attempts from {address}; retry in {wait:.0f}s",
                              retry_after=wait)

    def failed(self, address: str) -> None:
        level = self._level(address)
        self._buckets.pop(address, None)
        self._buckets[address] = (max(0.0, level - 1.0), self.clock.monotonic())
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.pop(next(iter(self._buckets)))
