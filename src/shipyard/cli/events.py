"""shipyard events: what happened — deployments, restarts, backups, alerts — oldest first."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    since: Annotated[str, typer.Option("--since", help="How far back, e.g. 10m, 1h, 7d.")] = "1h",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List the event log of the last hour (or --since)."""
    from urllib.parse import urlencode

    from shipyard.cli.app import AppContext

    app = AppContext.of(ctx)
    query = {"since": since, **({"env": env} if env else {})}
    data: dict[str, Any] = app.client.call("GET", "/v1/events?" + urlencode(query))
    if json_out:
        app.print_json(data)
        return
    if not data["events"]:
        app.echo(f"no events in the last {since}")
    for e in data["events"]:
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(e["at"]))
        app.echo(f"{when}  {e['env'] or '-'}  {e['kind']}  {e['message']}")
