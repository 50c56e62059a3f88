"""shipyard metrics: an environment's history — requests, errors, latency, CPU, memory, health."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f}ms" if v < 10 else f"{v:.1f}s"


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 1h, 24h, 30d.")] = "24h",
    step: Annotated[str, typer.Option("--step", help="One row per step, e.g. 10s, 1m, 1h.")] = "1m",
    release: Annotated[str | None, typer.Option("--release", help="Only this release.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show the environment's recorded history (10 s points for a day, 1 min points for 90 days)."""
    from urllib.parse import urlencode

    from rich.table import Table

    from shipyard.cli.app import AppContext

    app = AppContext.of(ctx)
    query = {"env": env, "since": since, "step": step, **({"release": release} if release else {})}
    data: dict[str, Any] = app.client.call("GET", "/v1/metrics?" + urlencode(query))
    if json_out:
        app.print_json(data)
        return
    rows = [p for p in data["total"] if p["requests"] or p["instances"]]
    if not rows:
        app.echo(f"no history for {env} in the last {since} (it is recorded while `shipyard up` runs)")
        return
    t = Table(box=None)
    for col in ("time", "rps", "errors", "p50", "p95", "p99", "cpu", "rss", "up", "restarts"):
        t.add_column(col, no_wrap=True, justify="left" if col == "time" else "right")
    for p in rows:
        rss = "-" if p["rss"] is None else f"{p['rss'] / 2**20:.0f}MiB"
        t.add_row(time.strftime("%m-%d %H:%M:%S", time.localtime(p["t"])), f"{p['rps']:.2f}", _pct(p["error_rate"]),
                  _ms(p["p50"]), _ms(p["p95"]), _ms(p["p99"]), _pct(p["cpu"]), rss, str(p["up"]), str(p["restarts"]))
    app.out.print(t)
