"""shipyard dashboard: the dashboard's URL and a one-time login link (valid 5 minutes, for your token's role)."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Print the dashboard's URL and a one-time login link."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/dashboard/link", {})
    if json_out:
        ap.print_json(doc)
        return
    ap.echo(f"dashboard: {doc['url']}")
    ap.echo(f"log in (once, within 5 minutes): {doc['login_link']}")
