"""The charts page (pure): RPS, error rate and P50/P95/P99 per release from the metric history, with the
deployments as markers; drawn by the vendored uPlot (static/uplot.iife.min.js, MIT, its licence beside it)
from a JSON data block, by static/charts.js."""

from __future__ import annotations

from html import escape
from typing import Any

from shipyard.control.dashboard.layout import data_block, env_picker, frame

MAX_RELEASES = 4  # the releases with most requests in the span get their own lines


def chart_series(metrics: dict[str, Any], marks: list[dict[str, Any]]) -> dict[str, Any]:
    """``/v1/metrics`` as uPlot's columns: one x axis (the steps), a column per release and quantity
    (None where the release had no point), the environment's total, and the deploy markers."""
    xs = sorted({p["t"] for p in metrics["total"]} | {p["t"] for ps in metrics["releases"].values() for p in ps})
    index = {t: i for i, t in enumerate(xs)}

    def column(points: list[dict[str, Any]], key: str, scale: float = 1.0) -> list[float | None]:
        col: list[float | None] = [None] * len(xs)
        for p in points:
            v = p.get(key)
            col[index[p["t"]]] = None if v is None else round(v * scale, 6)
        return col

    total = metrics["total"]
    busiest = sorted(metrics["releases"].items(), key=lambda kv: -sum(p["requests"] for p in kv[1]))[:MAX_RELEASES]
    releases = [{"release": r, "rps": column(ps, "rps"), "error_rate": column(ps, "error_rate", 100.0),
                 "p50": column(ps, "p50", 1000.0), "p95": column(ps, "p95", 1000.0),
                 "p99": column(ps, "p99", 1000.0)} for r, ps in busiest]
    until = max([metrics["until"], *(int(m["t"]) + 1 for m in marks)])  # a deploy just now still shows
    # The axis starts where something happened (a young environment's span is mostly empty).
    busy = [p["t"] for p in total if p["requests"]] + [int(m["t"]) for m in marks]
    start = max(metrics["since"], min(busy, default=metrics["since"]) - 6 * metrics["step"])
    return {"x": xs, "step": metrics["step"], "since": start, "until": until,
            "resolution": metrics["resolution"],
            "total": {"rps": column(total, "rps"), "error_rate": column(total, "error_rate", 100.0)},
            "releases": releases, "marks": marks,
            "requests": sum(p["requests"] for p in total), "errors": sum(p["errors"] for p in total)}


def charts_page(app: str, who: str, role: str, csrf: str, envs: list[str], env: str, span: str, spans: list[str],
                series: dict[str, Any], flash: str = "") -> str:
    links = " ".join(_span_link(env, s, s == span) for s in spans)
    empty = "" if series["x"] else "<p class=\"muted\" id=\"no-data\">no metric history in this span yet</p>"
    body = (f"{env_picker('/charts', envs, env)}<h2>{escape(env)}: the last {escape(span)}</h2>"
            f"<nav class=\"spans\">span: {links}</nav>"
            f"<p class=\"muted\">{len(series['x'])} points of {series['step']}s ({escape(series['resolution'])} "
            f"history) · {series['requests']} requests, {series['errors']} errors · markers: deployments</p>{empty}"
            "<div class=\"chart\" id=\"chart-rps\" data-title=\"Requests per second\"></div>"
            "<div class=\"chart\" id=\"chart-errors\" data-title=\"Error rate (%)\"></div>"
            "<div class=\"chart\" id=\"chart-latency\" data-title=\"Latency P50 / P95 / P99 (ms)\"></div>"
            + data_block("chart-data", series))
    return frame(app, "/charts", who, role, csrf, env, body, flash=flash, title=f"{env} charts — {app}",
                 scripts=("uplot.iife.min.js", "charts.js"), styles=("uplot.min.css",))


def _span_link(env: str, span: str, here: bool) -> str:
    cls = " class=\"here\"" if here else ""
    return f"<a href=\"/charts?env={escape(env)}&amp;since={escape(span)}\"{cls}>{escape(span)}</a>"
