"""The value of each alert series for one environment, from its traffic, raw history and backup records.

Traffic series (``WINDOWED``) are rates over a window — ``RATE_WINDOW_S`` (10 s) unless the expression
names one (``error_rate[1m]``) — every release together (as the router serves them). A window up to
``LIVE_S`` is read from the per-second totals the evaluator pulls from the router each second
(``live``), so a fault shows within seconds; a longer one (or any, without a live source: the tests of
the history) from the raw 10-second points ending at the newest whole point.
Gauges read the newest point; ``restarts`` counts the last 10 minutes. A series with nothing to read is
None: the rule's expression is then not true (no traffic is not an error rate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shipyard.engine.alerting.history import RAW_STEP, Point, combine
from shipyard.primitives.spec.alerting import WINDOWED, AlertExpr

# The default rate window: a 20 % fault crosses a 5 % threshold a quarter of the window after it began
# (2.5 s), yet at 200 req/s the window still holds 2 000 requests. ``series[1m]`` smooths a noisy one.
RATE_WINDOW_S = 10
LIVE_S = 60  # windows up to this are read from the per-second totals
RESTARTS_WINDOW_S = 600
# The newest point is stale past this: the recorder stopped (router down?), gauges read as no data.
STALE_S = 3 * RAW_STEP


@dataclass(frozen=True)
class BackupFacts:
    """Per source: the newest successful backup's end time (None: never), whether the newest run failed."""

    last_success: dict[str, float | None]
    failed: dict[str, bool]
    drill_missed: bool = False


def key_of(expr: AlertExpr) -> str:
    """Where ``env_values`` puts an expression's series: ``error_rate``, or ``error_rate[60]`` for a window."""
    if expr.series in WINDOWED and expr.window is not None and expr.window != RATE_WINDOW_S:
        return f"{expr.series}[{int(expr.window)}]"
    return expr.series


def window_of(expr: AlertExpr) -> int:
    return int(expr.window) if expr.window is not None else RATE_WINDOW_S


def traffic(points: Sequence[Point], live: Sequence[Point] | None, now: float, window: int
            ) -> tuple[list[Point], int]:
    """The points of the last ``window`` seconds, every release, and the window's length (rounded up to
    whole points when read from the history).

    ``live``: per-second totals (step 1, oldest first, the newest second finished; empty: none lately),
    or None without a live source. A window it can hold is read from it alone: a fallback to the history,
    whose newest point is older, would show seconds the live window had already left behind (an alert
    that resolved firing again)."""
    if live is not None and window <= LIVE_S:
        end = live[-1].t + 1 if live else 0
        return [p for p in live if p.t >= end - window], window
    end = int(now) - int(now) % RAW_STEP
    window += -window % RAW_STEP  # whole points
    return [p for p in points if end - window <= p.t < end], window


def env_values(points: Sequence[Point], now: float, live: Sequence[Point] | None = None,
               windows: Iterable[int] = (), quantiles: Iterable[int] | None = None) -> dict[str, float | None]:
    """Every traffic and instance series of one environment at ``now``; the traffic series over the
    default window and over each of ``windows`` (keyed ``series[seconds]``, see ``key_of``); the latency
    quantiles only over ``quantiles`` (None: every window): merging the histograms is what costs."""
    end = int(now) - int(now) % RAW_STEP
    out: dict[str, float | None] = {}
    wanted = None if quantiles is None else set(quantiles)
    for window in {RATE_WINDOW_S, *windows}:
        recent, length = traffic(points, live, now, window)
        suffix = "" if window == RATE_WINDOW_S else f"[{window}]"
        requests = sum(p.requests for p in recent)
        rate = sum(p.errors for p in recent) / requests if requests else None
        out.update({f"error_rate{suffix}": rate, f"availability{suffix}": None if rate is None else 1.0 - rate,
                    f"rps{suffix}": requests / length if recent else None,
                    f"p50{suffix}": None, f"p95{suffix}": None, f"p99{suffix}": None})
        if recent and (wanted is None or window in wanted):
            win = combine(recent, "", "*", end - length, length, keep_hist=False)
            out.update({f"p50{suffix}": win.p50, f"p95{suffix}": win.p95, f"p99{suffix}": win.p99})
    out["restarts"] = float(sum(p.restarts for p in points if p.t >= end - RESTARTS_WINDOW_S))
    newest_t = max((p.t for p in points if p.instances), default=None)
    newest = [p for p in points if p.t == newest_t] if newest_t is not None and newest_t >= end - STALE_S else []
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
    if (key := key_of(expr)) in values:
        return values[key]
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
