"""Control API routes for ``shipyard metrics``, ``shipyard alerts`` and ``shipyard events``.

``GET /v1/metrics?env=E&since=24h&step=1m[&release=R]``: the environment's history per step, every
release together (``total``) and per release (``releases``). Within the raw retention the steps are
folded from 10-second points (histograms merged: the quantiles of a step are exact to the histogram);
further back from minute points (quantiles: the step's worst minute).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shipyard.control.alerts import Evaluator
from shipyard.control.httpserver import Handler
from shipyard.control.metrics_recorder import point_of
from shipyard.engine.alerting.history import MINUTE_STEP, RAW_STEP, downsample, env_total
from shipyard.errors import BadInput
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec, parse_duration
from shipyard.primitives.spec.notifications import check_secrets
from shipyard.primitives.store import Store

MAX_POINTS = 20_000


@dataclass(frozen=True)
class MetricsContext:
    store: Store
    clock: Clock
    load_spec: Callable[[], Spec]
    evaluator: Evaluator
    secret_names: Callable[[str], Iterable[str]] | None = None  # env → its secrets' names


def _duration(q: dict[str, str], key: str, default: str) -> float:
    try:
        value = parse_duration(q.get(key) or default)
    except ValueError as exc:
        raise BadInput(f"--{key}: {exc}") from None
    if value <= 0:
        raise BadInput(f"--{key}: must be more than 0, got {q.get(key)!r}")
    return value


def metrics_routes(ctx: MetricsContext) -> dict[tuple[str, str], Handler[object]]:
    async def metrics(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env = q.get("env")
        if not env:
            raise BadInput("--env is required")
        spec = ctx.load_spec()
        spec.env(env)  # unknown environment → exit 2
        since_s = _duration(q, "since", "24h")
        step = int(_duration(q, "step", "1m"))
        now = ctx.clock.time()
        raw_ok = since_s <= spec.metrics.retention.raw
        unit = RAW_STEP if raw_ok else MINUTE_STEP
        if step % unit:
            raise BadInput(f"--step: must be a multiple of {unit}s for --since {q.get('since') or '24h'}, got {step}s")
        if since_s / step > MAX_POINTS:
            raise BadInput(f"--step: {since_s / step:.0f} steps are too many (at most {MAX_POINTS}); use a larger step")
        start = int(now - since_s)
        start -= start % step
        end = int(now) - int(now) % RAW_STEP
        rows = await asyncio.to_thread(ctx.store.read_points, "raw" if raw_ok else "minute", env, start, end,
                                       q.get("release") or None)
        points = [point_of(r, unit) for r in rows]
        releases: dict[str, list[dict[str, Any]]] = {}
        for p in downsample(points, step):
            releases.setdefault(p.release, []).append(p.to_json())
        return {"env": env, "since": start, "until": end, "step": step,
                "resolution": "raw" if raw_ok else "minute",
                "total": [p.to_json() for p in env_total(points, step)], "releases": releases}

    async def alerts(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        # Loaded (and so validated) even without --env: a broken [[alerts]] is exit 2 with its key path here,
        # while the evaluator keeps evaluating the last valid rules.
        spec = ctx.load_spec()
        env = q.get("env") or None
        if env is not None:
            spec.env(env)
        if ctx.secret_names is not None:  # what the rules would notify must be able to (exit 2, as at `up`)
            check_secrets(spec.notifications, [env] if env else spec.env_names, ctx.secret_names)
        return {"evaluations": ctx.evaluator.evaluations,
                "rules": [v.to_json() for v in ctx.evaluator.view(env)]}

    async def events(body: dict[str, Any], q: dict[str, str], who: object) -> Any:
        env = q.get("env") or None
        if env is not None:
            ctx.load_spec().env(env)
        since = ctx.clock.time() - _duration(q, "since", "1h")
        kinds = {k for k in q.get("kinds", "").split(",") if k}  # comma-separated; none: every kind
        rows = await asyncio.to_thread(ctx.store.events_since, since, env)
        return {"since": since, "events": [{"id": e.id, "at": e.at, "env": e.env, "kind": e.kind,
                                            "message": e.message, "data": e.data} for e in rows
                                           if not kinds or e.kind in kinds]}

    return {
        ("GET", "/v1/metrics"): metrics,
        ("GET", "/v1/alerts"): alerts,
        ("GET", "/v1/events"): events,
    }
