"""A standalone HTML report of a verification run: verdict, thresholds, charts drawn as inline SVG.

No scripts, no external assets: the file can be attached to a ticket or opened offline years later.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from shipyard.engine.verify.result import LatencySummary, VerifyResult

_W, _H, _PAD = 720, 220, 44
_COLORS = ("#2563eb", "#d97706", "#dc2626", "#059669")


def report_path(state_dir: Path, env: str, started_at: float) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started_at))
    return state_dir / "reports" / f"verify-{env}-{stamp}.html"


def write_report(result: VerifyResult, path: Path, *, env: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(result, env=env))
    tmp.replace(path)
    return path


def render(r: VerifyResult, *, env: str | None = None) -> str:
    title = f"verify {escape(env)}" if env else "verify"
    verdict = "GO" if r.go else "NO-GO"
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(r.started_at))
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title} — {verdict}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title} <span class='verdict {'go' if r.go else 'nogo'}'>{verdict}</span></h1>",
        f"<p class=sub>{escape(r.target)} · {when} · {escape(r.source)}</p>",
    ]
    if r.warnings:
        parts.append("<ul class=warn>" + "".join(f"<li>{escape(w)}</li>" for w in r.warnings) + "</ul>")
    parts.append("<h2>Thresholds</h2>")
    if r.thresholds:
        rows = "".join(
            f"<tr class={'ok' if t.ok else 'bad'}><td>{escape(t.metric)}</td><td><code>{escape(t.expr)}</code></td>"
            f"<td>{escape(t.observed_text())}</td><td>{'pass' if t.ok else 'FAIL'}</td></tr>" for t in r.thresholds)
        parts.append(f"<table><tr><th>metric</th><th>threshold</th><th>observed</th><th></th></tr>{rows}</table>")
    else:
        parts.append("<p>No thresholds configured: the verdict is go by default.</p>")
    parts.append("<h2>Run</h2>" + _facts(r))
    parts.append("<h2>Latency (ms)</h2>" + _latency_table(r))
    if r.histogram:
        parts.append("<h3>Latency histogram</h3>" + _histogram_svg(r.histogram))
    if r.series:
        xs = [p.t for p in r.series]
        parts.append("<h3>Latency over time (ms, by second of completion)</h3>")
        parts.append(_lines_svg(xs, {"p50": [p.p50 for p in r.series], "p95": [p.p95 for p in r.series],
                                     "p99": [p.p99 for p in r.series]}))
        parts.append("<h3>Throughput over time (responses/s)</h3>")
        parts.append(_lines_svg(xs, {"responses": [float(p.requests) for p in r.series],
                                     "failed": [float(p.failed) for p in r.series]}))
    if r.scenarios:
        rows = "".join(f"<tr><td>{escape(s.label)}</td><td>{s.weight:g}</td><td>{s.requests}</td>"
                       f"<td>{s.failed}</td></tr>" for s in r.scenarios)
        parts.append("<h2>Scenarios</h2><table><tr><th>scenario</th><th>weight</th><th>requests</th>"
                     f"<th>failed</th></tr>{rows}</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _facts(r: VerifyResult) -> str:
    facts = [
        ("rate requested", f"{r.rate_requested:g}/s"),
        ("rate achieved", f"{r.rate_achieved:.1f}/s"),
        ("duration", f"{r.duration:g}s" + (f" after a {r.ramp:g}s ramp" if r.ramp else "")),
        ("requests", str(r.requests)),
        ("failed", f"{r.failed} ({r.failed_rate:.3%})"),
        ("statuses", ", ".join(f"{s}: {n}" for s, n in r.statuses) or "none"),
    ]
    if r.errors:
        facts.append(("errors", ", ".join(f"{k}: {n}" for k, n in r.errors)))
    g = r.generator
    if g:
        facts += [("generator CPU", f"{g.cpu_percent:.0f}% of a core ({g.cpu_seconds:.1f}s)"),
                  ("connections", f"{g.connections} (max {g.max_connections})"),
                  ("late / dropped", f"{g.late} / {g.dropped} (largest lag {g.max_lag_ms:.1f} ms)")]
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in facts) + "</table>"


def _latency_table(r: VerifyResult) -> str:
    def row(name: str, s: LatencySummary) -> str:
        cells = "".join(f"<td>{_fmt(getattr(s, k))}</td>" for k in ("p50", "p90", "p95", "p99", "max", "avg"))
        return f"<tr><th>{name}</th>{cells}</tr>"

    head = "<tr><th></th>" + "".join(f"<th>{k}</th>" for k in ("p50", "p90", "p95", "p99", "max", "avg")) + "</tr>"
    rows = row("from scheduled time", r.latency)
    if r.service is not None:
        rows += row("from sent time", r.service)
    note = ("<p class=sub>“From scheduled time” is what a user arriving on schedule waits, and what thresholds "
            "judge; “from sent time” is what a closed-loop tool would report.</p>") if r.service else ""
    return f"<table>{head}{rows}</table>{note}"


def _histogram_svg(buckets: Sequence[tuple[float, float, int]]) -> str:
    """Counts regrouped into about 40 logarithmic bins between the smallest and largest latency."""
    lo = max(min(b[0] for b in buckets), 0.001)
    hi = max(b[1] for b in buckets)
    n = 40
    span = math.log(hi / lo) if hi > lo else 1.0
    bins = [0] * n
    for low, high, count in buckets:
        mid = max((low + high) / 2, lo)
        bins[min(n - 1, int(math.log(mid / lo) / span * n))] += count
    top = max(bins) or 1
    bw = (_W - 2 * _PAD) / n
    bars = []
    for i, c in enumerate(bins):
        if c:
            h = (_H - 2 * _PAD) * c / top
            edge = lo * math.exp(span * i / n)
            bars.append(f"<rect x='{_PAD + i * bw:.1f}' y='{_H - _PAD - h:.1f}' width='{bw - 1:.1f}' "
                        f"height='{h:.1f}' fill='{_COLORS[0]}'><title>≥ {edge:.3g} ms: {c}</title></rect>")
    ticks = []
    for i in range(0, n + 1, 8):
        edge = lo * math.exp(span * i / n)
        ticks.append(f"<text x='{_PAD + i * bw:.1f}' y='{_H - _PAD + 16}' text-anchor=middle>{edge:.3g}</text>")
    return _svg("".join(bars) + "".join(ticks) + _axes() +
                f"<text x='{_PAD - 6}' y='{_PAD}' text-anchor=end>{top}</text>"
                f"<text x='{_W / 2}' y='{_H - 6}' text-anchor=middle>ms (log scale)</text>")


def _lines_svg(xs: Sequence[int], series: dict[str, list[float]]) -> str:
    values = [v for vs in series.values() for v in vs if not math.isnan(v)]
    if not values:
        return ""
    top = max(values) or 1.0
    bottom = 0.0
    x_max = max(xs) or 1

    def px(x: float) -> float:
        return _PAD + (_W - 2 * _PAD) * x / x_max

    def py(y: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * (y - bottom) / (top - bottom or 1.0)

    body = []
    for k, (name, ys) in enumerate(series.items()):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True) if not math.isnan(y))
        color = _COLORS[k % len(_COLORS)]
        body.append(f"<polyline fill=none stroke='{color}' stroke-width=1.5 points='{pts}'/>")
        body.append(f"<text x='{_W - _PAD + 4}' y='{_PAD + 14 * k}' fill='{color}'>{escape(name)}</text>")
    body.append(f"<text x='{_PAD - 6}' y='{_PAD}' text-anchor=end>{top:.3g}</text>")
    body.append(f"<text x='{_PAD - 6}' y='{_H - _PAD}' text-anchor=end>{bottom:g}</text>")
    body.append(f"<text x='{_W / 2}' y='{_H - 6}' text-anchor=middle>seconds</text>")
    body.append(f"<text x='{_W - _PAD}' y='{_H - _PAD + 16}' text-anchor=middle>{x_max}</text>")
    return _svg("".join(body) + _axes())


def _axes() -> str:
    return (f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#555'/>"
            f"<line x1='{_PAD}' y1='{_PAD}' x2='{_PAD}' y2='{_H - _PAD}' stroke='#555'/>")


def _svg(inner: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W + 40}' height='{_H}' "
            f"viewBox='0 0 {_W + 40} {_H}' font-size='11' font-family='sans-serif'>{inner}</svg>")


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 900px; color: #111; }
h1 .verdict { padding: .1em .5em; border-radius: .3em; color: #fff; font-size: .8em; }
.go { background: #059669; } .nogo { background: #dc2626; }
.sub { color: #555; } table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
tr.bad td { background: #fee2e2; } tr.ok td:last-child { color: #059669; }
ul.warn { background: #fef3c7; padding: .6em 2em; border-radius: .3em; }
"""
