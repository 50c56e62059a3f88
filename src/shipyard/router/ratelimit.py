"""Per-client-IP token buckets, per environment and optionally per path prefix."""

from __future__ import annotations

from math import ceil

from shipyard.primitives.spec.router import RateLimitSpec

_MAX_CLIENTS = 100_000  # beyond this, full buckets are forgotten first


class _Bucket:
    __slots__ = ("rate", "burst", "clients")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst or max(1, int(2 * rate)))
        self.clients: dict[str, list[float]] = {}  # ip -> [tokens, last refill time]

    def take(self, ip: str, now: float) -> float:
        """0.0 when allowed, else seconds until a token is available."""
        st = self.clients.get(ip)
        if st is None:
            if len(self.clients) >= _MAX_CLIENTS:
                self.prune(now)
            self.clients[ip] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, st[0] + (now - st[1]) * self.rate)
        st[1] = now
        if tokens >= 1.0:
            st[0] = tokens - 1.0
            return 0.0
        st[0] = tokens
        return (1.0 - tokens) / self.rate

    def prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled (they behave exactly like new ones)."""
        full = [ip for ip, st in self.clients.items() if st[0] + (now - st[1]) * self.rate >= self.burst]
        for ip in full:
            del self.clients[ip]


class RateLimiter:
    def __init__(self, spec: RateLimitSpec) -> None:
        self.spec = spec
        self._env = _Bucket(spec.rps, spec.burst)
        # Longest prefix first so "/api/login" wins over "/api".
        self._paths = sorted(
            ((p.prefix.encode(), _Bucket(p.rps, p.burst)) for p in spec.paths), key=lambda x: -len(x[0])
        )

    def check(self, ip: str, path: bytes, now: float) -> int:
        """0 when allowed, else the Retry-After seconds (at least 1)."""
        for prefix, bucket in self._paths:
            if path.startswith(prefix):
                wait = bucket.take(ip, now)
                if wait:
                    return max(1, ceil(wait))
                break
        wait = self._env.take(ip, now)
        return max(1, ceil(wait)) if wait else 0

    def prune(self, now: float) -> None:
        self._env.prune(now)
        for _, b in self._paths:
            b.prune(now)
