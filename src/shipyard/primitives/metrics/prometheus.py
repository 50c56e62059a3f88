"""Prometheus text exposition (format 0.0.4) of router series, aggregated per env × release."""

from __future__ import annotations

from collections.abc import Iterable

from shipyard.primitives.metrics.histogram import bucket_bounds, bucket_index
from shipyard.primitives.metrics.slices import Series

# `le` edges are exact histogram bucket edges, so cumulative counts are exact; they are the edges nearest
# the usual Prometheus defaults (0.5 s, 1 s and 2 s are exact).
_WANTED = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LE_EDGES: tuple[float, ...] = tuple(bucket_bounds(bucket_index(v))[0] for v in _WANTED)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{v:.1f}"


def render(series: Iterable[Series]) -> str:
    by_rel: dict[tuple[str, str], list[Series]] = {}
    for s in series:
        by_rel.setdefault((s.env, s.release), []).append(s)
    out = [
        "# HELP http_requests_total Requests answered by the router.",
        "# TYPE http_requests_total counter",
    ]
    for (env, rel), group in sorted(by_rel.items()):
        codes: dict[int, int] = {}
        for s in group:
            for c, n in s.codes.items():
                codes[c] = codes.get(c, 0) + n
        for c in sorted(codes):
            out.append(f'http_requests_total{{env="{_esc(env)}",release="{_esc(rel)}",code="{c}"}} {codes[c]}')
    out += [
        "# HELP http_request_duration_seconds Time from request head to end of response.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    for (env, rel), group in sorted(by_rel.items()):
        hist: dict[int, int] = {}
        total_sum = 0.0
        for s in group:
            total_sum += s.lat_sum_total
            for i, n in s.hist_total.items():
                hist[i] = hist.get(i, 0) + n
        labels = f'env="{_esc(env)}",release="{_esc(rel)}"'
        count = sum(hist.values())
        for edge in LE_EDGES:
            cut = bucket_index(edge)
            cum = sum(n for i, n in hist.items() if i < cut)
            out.append(f'http_request_duration_seconds_bucket{{{labels},le="{_num(edge)}"}} {cum}')
        out.append(f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
        out.append(f"http_request_duration_seconds_sum{{{labels}}} {total_sum!r}")
        out.append(f"http_request_duration_seconds_count{{{labels}}} {count}")
    for name, help_, attr, kind in (
        ("http_requests_in_flight", "Requests being proxied now.", "inflight", "gauge"),
        ("router_upstream_errors_total", "Connect failures, resets and timeouts talking to instances.",
         "upstream_errors_total", "counter"),
        ("router_request_bytes_total", "Request bytes received from clients.", "bytes_in_total", "counter"),
        ("router_response_bytes_total", "Response bytes sent to clients.", "bytes_out_total", "counter"),
    ):
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        for (env, rel), group in sorted(by_rel.items()):
            value = sum(getattr(s, attr) for s in group)
            out.append(f'{name}{{env="{_esc(env)}",release="{_esc(rel)}"}} {value}')
    return "\n".join(out) + "\n"
