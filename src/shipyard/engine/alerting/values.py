"""The value of each alert series for one environment, from its raw history and its backup records.

Traffic series read the last minute (``RATE_WINDOW_S``) of raw points, every release together (as the
router serves them); gauges read the newest point; ``restarts`` counts the last 10 minutes. A series
with nothing to read is None: the rule's expression is then not true (no traffic is not an error rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.engine.alerting.history import RAW_STEP, Point, combine
from shipyard.primitives.spec.alerting import AlertExpr

RATE_WINDOW_S = 60
RESTARTS_WINDOW_S = 600
# The newest point is stale past this: the recorder stopped (router down?), gauges read as no data.
STALE_S = 3 * RAW_STEP


@dataclass(frozen=True)
class BackupFacts:
    """Per source: the newest successful backup's end time (None: never), whether the newest run failed."""

    last_success: dict[str, float | None]
    failed: dict[str, bool]
    drill_missed: bool = False


def env_values(points: Sequence[Point], now: float) -> dict[str, float | None]:
    """Every traffic and instance series of one environment at ``now``."""
    end = int(now) - int(now) % RAW_STEP
    recent = [p for p in points if end - RATE_WINDOW_S <= p.t < end]
    win = combine(recent, "", "*", end - RATE_WINDOW_S, RATE_WINDOW_S, keep_hist=False) if recent else None
    newest_t = max((p.t for p in points if p.instances), default=None)
    newest = [p for p in points if p.t == newest_t] if newest_t is not None and newest_t >= end - STALE_S else []
    out: dict[str, float | None] = {
        "error_rate": win.error_rate if win else None,
        "availability": win.availability if win else None,
        "p50": win.p50 if win else None,
        "p95": win.p95 if win else None,
        "p99": win.p99 if win else None,
        "rps": win.requests / RATE_WINDOW_S if win else None,
        "restarts": float(sum(p.restarts for p in points if p.t >= end - RESTARTS_WINDOW_S)),
    }
    if newest:
        cpus = [p.cpu for p in newest if p.cpu is not None]
        mems = [p.memory for p in newest if p.memory is not None]
        out.update(cpu=max(cpus) if cpus else None, memory=max(mems) if mems else None,
                   up=float(sum(p.up for p in newest)), health_failures=float(max(p.health_failures for p in newest)))
    else:
        out.update(cpu=None, memory=None, up=None, health_failures=None)
    return out


def value_of(expr: AlertExpr, values: dict[str, float | None], backups: BackupFacts | None, now: float
             ) -> float | None:
    if expr.series in values:
        return values[expr.series]
    if backups is None:
        return None
    source = expr.label("source")
    if expr.series == "drill_missed":
        return 1.0 if backups.drill_missed else 0.0
    if expr.series == "backup_failed":
        return float(sum(1 for s, f in backups.failed.items() if f and source in (None, s)))
    if expr.series == "backup_age":
        ages = [now - t if t is not None else float("inf")
                for s, t in backups.last_success.items() if source in (None, s)]
        return max(ages) if ages else None
    return None
