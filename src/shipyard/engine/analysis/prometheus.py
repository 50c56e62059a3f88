"""A thin PromQL instant-query client (Prometheus HTTP API ``/api/v1/query``) and a pure parser.

``parse_query_response`` turns the JSON answer into ``QueryResult``; ``query`` does the HTTP GET with a
timeout and translates every failure into ``PrometheusError`` (a ``ShipyardError``) naming the server
and the query. A query for a condition should return one series or a scalar; with several series
``QueryResult.value`` takes the worst one for the condition's direction (max for above, min for below),
and an empty vector is "no data" (None).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.analysis.conditions import Condition, Reading
from shipyard.errors import ShipyardError

DEFAULT_TIMEOUT = 5.0


class PrometheusError(ShipyardError):
    """A PromQL query failed: Prometheus unreachable, timed out, or rejected the query."""


@dataclass(frozen=True)
class PromSeries:
    metric: dict[str, str] = field(default_factory=dict)
    t: float = 0.0
    value: float = math.nan


@dataclass(frozen=True)
class QueryResult:
    result_type: str  # "vector" | "scalar"
    series: tuple[PromSeries, ...]

    def value(self, direction: str = "above") -> float | None:
        """The single number a condition compares: None when there is no (finite or infinite) value."""
        vals = [s.value for s in self.series if not math.isnan(s.value)]
        if not vals:
            return None
        return min(vals) if direction == "below" else max(vals)


def _number(raw: Any, where: str) -> float:
    # Prometheus sends sample values as strings ("1.5", "NaN", "+Inf").
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise PrometheusError(f"unexpected Prometheus answer: {where} is not a number ({raw!r})") from None


def _pair(raw: Any, where: str) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2:
        raise PrometheusError(f"unexpected Prometheus answer: {where} is not [time, value]")
    return _number(raw[0], f"{where} time"), _number(raw[1], f"{where} value")


def parse_query_response(body: bytes | str | dict[str, Any]) -> QueryResult:
    """Parse an ``/api/v1/query`` answer (success or error envelope)."""
    if isinstance(body, bytes | str):
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise PrometheusError("unexpected Prometheus answer: not JSON") from exc
    else:
        doc = body
    if not isinstance(doc, dict):
        raise PrometheusError("unexpected Prometheus answer: not a JSON object")
    if doc.get("status") != "success":
        kind = doc.get("errorType") or "error"
        raise PrometheusError(f"Prometheus rejected the query ({kind}): {doc.get('error') or 'no message'}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("unexpected Prometheus answer: no 'data'")
    rtype = data.get("resultType")
    result = data.get("result")
    if rtype == "scalar":
        t, v = _pair(result, "scalar")
        return QueryResult("scalar", (PromSeries({}, t, v),))
    if rtype == "vector":
        if not isinstance(result, list):
            raise PrometheusError("unexpected Prometheus answer: vector result is not a list")
        series = []
        for i, item in enumerate(result):
            if not isinstance(item, dict):
                raise PrometheusError(f"unexpected Prometheus answer: result[{i}] is not an object")
            metric = item.get("metric") or {}
            t, v = _pair(item.get("value"), f"result[{i}]")
            series.append(PromSeries({str(k): str(val) for k, val in metric.items()}, t, v))
        return QueryResult("vector", tuple(series))
    raise PrometheusError(
        f"the query returned a {rtype} result; a condition needs an instant vector or a scalar "
        "(drop the range selector [..] or wrap it in a function such as rate())"
    )


def query(
    base_url: str,
    promql: str,
    *,
    at: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> QueryResult:
    """Run an instant query. ``at`` is the evaluation time (epoch seconds; Prometheus' "now" if None)."""
    params = {"query": promql, "timeout": f"{timeout:g}s"}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{base_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    where = f"Prometheus at {base_url}"
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        # Prometheus explains 400/422/503 in the usual JSON envelope; fall back to the status line.
        try:
            raw = exc.read()
        except OSError:
            raw = b""
        try:
            parse_query_response(raw)
        except PrometheusError as inner:
            if "rejected" in inner.message:
                raise PrometheusError(f"{where}: {inner.message} — query {promql!r}") from exc
        raise PrometheusError(f"{where} answered HTTP {exc.code} {exc.reason} for query {promql!r}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise PrometheusError(f"{where} did not answer within {timeout:g}s (query {promql!r})") from exc
        raise PrometheusError(f"cannot reach {where}: {exc.reason}") from exc
    except TimeoutError as exc:
        raise PrometheusError(f"{where} did not answer within {timeout:g}s (query {promql!r})") from exc
    except OSError as exc:
        raise PrometheusError(f"cannot reach {where}: {exc}") from exc
    try:
        return parse_query_response(body)
    except PrometheusError as exc:
        raise PrometheusError(f"{where}: {exc.message} — query {promql!r}") from exc


def read_condition(cond: Condition, at: float, *, timeout: float = DEFAULT_TIMEOUT) -> Reading:
    """Query a PromQL condition once and return the reading ``evaluate_prometheus`` consumes."""
    if cond.kind != "prometheus" or cond.url is None or cond.query is None:
        raise ValueError("not a PromQL condition")
    result = query(cond.url, cond.query, at=at, timeout=timeout)
    return Reading(at, result.value(cond.direction))
