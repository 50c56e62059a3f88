"""shipyard audit: who did what — deployments, approvals, secret and token changes, runs, locks, overrides."""

from __future__ import annotations

import time
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only the last DURATION (e.g. 24h).")] = None,
    limit: Annotated[str, typer.Option("--limit", help="At most this many entries (newest).")] = "200",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List the audit log, oldest first."""
    from urllib.parse import urlencode

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    q = {k: v for k, v in (("env", env), ("since", since), ("limit", limit)) if v}
    rows = ap.client.call("GET", "/v1/audit?" + urlencode(q))
    if json_out:
        ap.print_json(rows)
        return
    if not rows:
        ap.echo("nothing recorded" + (f" for {env}" if env else ""))
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["at"]))
        where = f" {r['env']}" if r["env"] else ""
        what = f" {r['target']}" if r["target"] else ""
        ap.echo(f"{when}{where}  {r['performer']}  {r['action']}{what}")
