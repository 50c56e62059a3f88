"""The outcome of a verification run: verdict, figures, series, and its JSON document."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shipyard.engine.verify.thresholds import ThresholdResult
from shipyard.errors import NoGo
from shipyard.primitives.metrics import Histogram


def ms(seconds: float | None) -> float:
    """Seconds (None: no value) as milliseconds (NaN: no value), the unit of results and thresholds."""
    return math.nan if seconds is None else seconds * 1000.0


def _num(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds."""

    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    min: float
    avg: float

    @classmethod
    def of(cls, h: Histogram) -> LatencySummary:
        if not h.total:
            nan = math.nan
            return cls(nan, nan, nan, nan, nan, nan, nan)
        q = h.quantile
        return cls(ms(q(0.5)), ms(q(0.9)), ms(q(0.95)), ms(q(0.99)), ms(h.max), ms(h.min), ms(h.mean))

    def to_json(self) -> dict[str, float | None]:
        return {k: _num(getattr(self, k)) for k in ("p50", "p90", "p95", "p99", "max", "min", "avg")}


@dataclass(frozen=True)
class SecondPoint:
    """One second of the run, by completion time (all of it, ramp included)."""

    t: int
    requests: int
    failed: int
    p50: float
    p95: float
    p99: float
    max: float
    ramp: bool

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "requests": self.requests, "failed": self.failed, "p50_ms": _num(self.p50),
                "p95_ms": _num(self.p95), "p99_ms": _num(self.p99), "max_ms": _num(self.max), "ramp": self.ramp}


@dataclass(frozen=True)
class ScenarioResult:
    label: str
    weight: float
    requests: int
    failed: int


@dataclass(frozen=True)
class GeneratorSummary:
    cpu_percent: float  # of one core, over the run
    cpu_seconds: float
    connections: int  # most open at once
    max_connections: int  # the cap (max_vus)
    late: int  # requests sent more than 10 ms after their scheduled time
    dropped: int  # requests never sent (queued past the timeout)
    max_lag_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"cpu_percent": round(self.cpu_percent, 1), "cpu_seconds": round(self.cpu_seconds, 3),
                "connections": self.connections, "max_connections": self.max_connections, "late": self.late,
                "dropped": self.dropped, "max_lag_ms": round(self.max_lag_ms, 3)}


@dataclass(frozen=True)
class VerifyResult:
    go: bool
    target: str
    source: str  # "shipyard" (built-in generator) or "locust"
    started_at: float  # epoch seconds
    duration: float  # judged seconds
    ramp: float
    rate_requested: float
    rate_achieved: float
    requests: int  # sent in the judged part
    failed: int
    latency: LatencySummary  # from the scheduled time (what users would see)
    service: LatencySummary | None  # from the sent time (what a closed-loop tool would report)
    thresholds: tuple[ThresholdResult, ...]
    series: tuple[SecondPoint, ...]
    histogram: tuple[tuple[float, float, int], ...]  # (low_ms, high_ms, count) non-empty buckets
    scenarios: tuple[ScenarioResult, ...]
    statuses: tuple[tuple[int, int], ...]
    errors: tuple[tuple[str, int], ...]
    generator: GeneratorSummary | None
    warnings: tuple[str, ...]

    @property
    def failed_rate(self) -> float:
        return self.failed / self.requests if self.requests else 0.0

    @property
    def verdict(self) -> str:
        return "go" if self.go else "no-go"

    def failing(self) -> list[ThresholdResult]:
        return [t for t in self.thresholds if not t.ok]

    def headline(self) -> str:
        """One line for logs: verdict, rate, latency, failed share and the failing thresholds."""
        head = (f"verify {self.verdict}: {self.requests} requests at {self.rate_achieved:.0f}/s "
                f"(asked {self.rate_requested:g}/s), p95 {_fmt_ms(self.latency.p95)}, "
                f"p99 {_fmt_ms(self.latency.p99)}, failed {self.failed_rate:.2%}")
        bad = self.failing()
        if bad:
            head += "; failed: " + ", ".join(f"{t.metric} {t.expr} (observed {t.observed_text()})" for t in bad)
        return head

    summary = headline  # alias until cli/ is moved to verify_gate (GateOutcome.summary() is the dict)

    def require_go(self) -> None:
        """Raise ``NoGo`` (exit 99) naming the thresholds that failed."""
        if not self.go:
            raise NoGo(self.headline())

    def to_json(self) -> dict[str, Any]:
        return {
            "go": self.go,
            "verdict": self.verdict,
            "target": self.target,
            "source": self.source,
            "started_at": self.started_at,
            "duration_s": self.duration,
            "ramp_s": self.ramp,
            "rate_requested": self.rate_requested,
            "rate_achieved": round(self.rate_achieved, 3),
            "requests": self.requests,
            "failed": self.failed,
            "failed_rate": round(self.failed_rate, 6),
            "latency_ms": self.latency.to_json(),
            "service_time_ms": self.service.to_json() if self.service else None,
            "thresholds": [t.to_json() for t in self.thresholds],
            "scenarios": [{"name": s.label, "weight": s.weight, "requests": s.requests, "failed": s.failed}
                          for s in self.scenarios],
            "statuses": {str(k): v for k, v in self.statuses},
            "errors": dict(self.errors),
            "generator": self.generator.to_json() if self.generator else None,
            "warnings": list(self.warnings),
            "series": [p.to_json() for p in self.series],
        }


def _fmt_ms(ms: float) -> str:
    return "n/a" if math.isnan(ms) else f"{ms:.1f} ms"
