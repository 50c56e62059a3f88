"""shipyard history: an environment's deployments, newest first."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    limit: Annotated[str, typer.Option("--limit", help="How many deployments (1 to 1000).")] = "20",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List deployments and rollbacks with their outcome and steps."""
    from urllib.parse import urlencode

    from rich.table import Table

    from shipyard.cli.app import AppContext, esc
    from shipyard.cli.render import render_failure

    app = AppContext.of(ctx)
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        app.abort(f"--limit must be a whole number from 1 to 1000, got {limit!r}", 2)
    rows: list[dict[str, Any]]
    if app.remote is None and _is_kube(app, env):
        from shipyard.cli.kube_status import history_rows

        rows = history_rows(app, env, int(limit))  # recorded by the CLI: no control plane needed
    else:
        rows = app.client.call("GET", "/v1/history?" + urlencode({"env": env, "limit": limit}))
    if json_out:
        app.print_json(rows)
        return
    console = app.out
    wide = console.width >= 140  # "from" only when it fits; --json has everything
    t = Table(box=None)
    for col in ("id", "when", "kind", "release", *(("from",) if wide else ()), "outcome", "took"):
        t.add_column(col, no_wrap=True)
    # The reason takes what the other columns leave; it is printed in full below for the newest ones.
    t.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=max(12, console.width - (100 if wide else 72)))
    for r in rows:
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(r["started_at"]))
        t.add_row(str(r["deployment"]), when, esc(r["kind"]), esc(r["release"] or "-"),
                  *((esc(r["previous_release"] or "-"),) if wide else ()), esc(r["outcome"]),
                  f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-", esc(r["reason"] or ""))
    console.print(t)
    # The newest problems in full: the reason and, for a canary, each failing condition with its window.
    for r in rows[:5]:
        if r["reason"] and (len(r["reason"]) > 60 or (r.get("rollback") or {}).get("canary")):
            console.print(esc(f"deployment {r['deployment']} ({r['outcome']}): {r['reason']}"))
            render_failure(console, r.get("rollback"))


def _is_kube(app: Any, env: str) -> bool:
    app.check_env(env)
    return bool(app.env(env).target == "kubernetes")
