"""k6-style thresholds: parse (syntax lives with the spec) and judge against what a run observed."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shipyard.errors import BadInput
from shipyard.primitives.spec.verify import ThresholdExpr, ThresholdsSpec, parse_threshold

__all__ = ["Observed", "ThresholdResult", "ThresholdExpr", "evaluate", "parse", "parse_all"]


def parse(metric: str, text: str) -> ThresholdExpr:
    """Parse one threshold; a malformed one is ``BadInput`` naming it."""
    try:
        return parse_threshold(metric, text)
    except ValueError as exc:
        raise BadInput(f"thresholds.{metric}: {exc}") from exc


def parse_all(thresholds: ThresholdsSpec | dict[str, list[str] | str]) -> list[ThresholdExpr]:
    if isinstance(thresholds, ThresholdsSpec):
        return thresholds.parsed()
    out = []
    for metric, texts in thresholds.items():
        for text in [texts] if isinstance(texts, str) else texts:
            out.append(parse(metric, text))
    return out


@dataclass(frozen=True)
class Observed:
    """The judged part of a run, as thresholds see it."""

    seconds: float  # judged duration
    requests: int  # sent (k6 http_reqs)
    failed: int
    dropped: int
    avg_ms: float
    min_ms: float
    max_ms: float
    quantile_ms: Callable[[float], float]  # q in 0..1 → ms; raises BadInput if the source lacks it

    def value(self, t: ThresholdExpr) -> float:
        if t.metric == "http_req_duration":
            if t.aggregation == "p":
                assert t.percentile is not None
                return self.quantile_ms(t.percentile / 100.0)
            if t.aggregation == "med":
                return self.quantile_ms(0.5)
            return {"avg": self.avg_ms, "min": self.min_ms, "max": self.max_ms}[t.aggregation]
        if t.metric == "http_req_failed":
            return self.failed / self.requests if self.requests else math.nan
        count = self.requests if t.metric == "http_reqs" else self.dropped
        if t.aggregation == "count":
            return float(count)
        return count / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True)
class ThresholdResult:
    metric: str
    expr: str
    observed: float
    ok: bool

    def observed_text(self) -> str:
        """The observed value with its unit, for people."""
        v = self.observed
        if math.isnan(v):
            return "n/a"
        if self.metric == "http_req_duration":
            return f"{v:.4g} ms"
        if self.metric == "http_req_failed":
            return f"{v:.3%}"
        return f"{v:,.1f}/s" if self.expr.startswith("rate") else f"{v:,.0f}"

    def to_json(self) -> dict[str, object]:
        observed = None if math.isnan(self.observed) else round(self.observed, 6)
        return {"metric": self.metric, "expr": self.expr, "observed": observed, "ok": self.ok}


def evaluate(exprs: Iterable[ThresholdExpr], observed: Observed) -> list[ThresholdResult]:
    """Each threshold with its observed value; an unobservable value (no requests) fails it."""
    out = []
    for t in exprs:
        value = observed.value(t)
        out.append(ThresholdResult(t.metric, t.expr, value, t.holds(value)))
    return out
