"""shipyard alerts: every alert rule, its state (inactive, pending, firing, resolved), since when, value."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show the alert rules (shipped defaults and [[alerts]]) and what each one says now."""
    from urllib.parse import urlencode

    from rich.table import Table

    from shipyard.cli.app import AppContext, esc

    app = AppContext.of(ctx)
    if env is not None:
        app.check_env(env)
    app.check_receiver_secrets([env] if env else None)
    data: dict[str, Any] = app.client.call("GET", "/v1/alerts" + (f"?{urlencode({'env': env})}" if env else ""))
    if json_out:
        app.print_json(data)
        return
    order = {"firing": 0, "pending": 1, "resolved": 2, "inactive": 3}
    t = Table(box=None)
    for col in ("env", "rule", "state", "since", "severity", "expr", "summary"):
        t.add_column(col, no_wrap=col != "summary")
    for r in sorted(data["rules"], key=lambda r: (order.get(r["state"], 9), r["env"], r["name"])):
        since = time.strftime("%m-%d %H:%M:%S", time.localtime(r["since"])) if r["since"] else "-"
        summary = r["summary"] if r["state"] in ("firing", "pending") else ""
        t.add_row(esc(r["env"]), esc(r["name"]), esc(r["state"]), since, esc(r["severity"]), esc(r["expr"]),
                  esc(summary))
    app.out.print(t)
