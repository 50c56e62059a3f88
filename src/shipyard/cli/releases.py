"""shipyard releases: the releases built for this project, newest first."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List releases (id, commit, message, build time)."""
    from rich.table import Table

    from shipyard.cli.app import AppContext, esc

    app = AppContext.of(ctx)
    rows: list[dict[str, Any]] = app.client.call("GET", "/v1/releases")
    if json_out:
        app.print_json(rows)
        return
    t = Table(box=None)
    for col in ("release", "commit", "built", "build", "serving", "message"):
        t.add_column(col, no_wrap=col in ("release", "commit", "built"))
    for r in rows:
        t.add_row(esc(r["release"]), esc(r["commit"][:10]),
                  time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
                  f"{r['build_duration_s']:.1f}s",
                  esc(", ".join(r["serving"]) or ("" if r["on_disk"] else "(pruned)")),
                  esc((r["message"] or "")[:60]))
    app.out.print(t)
