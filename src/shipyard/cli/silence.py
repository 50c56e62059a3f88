"""shipyard silence: mute notifications whose labels match, for a while, saying why."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

app = typer.Typer(help="Silence notifications by label (alerts and lifecycle events alike).", no_args_is_help=True)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@app.command("add")
def add(
    ctx: typer.Context,
    match: Annotated[str, typer.Option("--match", help="label=value[,label=~regex…], e.g. env=prod,alertname=HighErrorRate")],
    for_: Annotated[str, typer.Option("--for", help="How long, e.g. 2h.")],
    message: Annotated[str, typer.Option("--message", "-m", help="Why (shown with the silence).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Send nothing for matching alerts and events until the silence ends (or is expired)."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/silences", {"match": match, "for": for_, "comment": message})
    if json_out:
        ap.print_json(doc)
    else:
        ap.echo(f"silence {doc['id']}: {doc['match']} until {_when(doc['ends_at'])} ({doc['comment']})")


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also expired silences.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Active silences (with --all, every one)."""
    from rich.table import Table

    from shipyard.cli.app import AppContext, esc

    ap = AppContext.of(ctx)
    doc: dict[str, Any] = ap.client.call("GET", "/v1/silences" + ("?all=1" if all_ else ""))
    if json_out:
        ap.print_json(doc)
        return
    if not doc["silences"]:
        ap.echo("no silences")
        return
    t = Table(box=None)
    for col in ("id", "state", "match", "until", "by", "comment"):
        t.add_column(col, no_wrap=col != "comment")
    for s in doc["silences"]:
        t.add_row(str(s["id"]), s["state"], esc(s["match"]), _when(s["ends_at"]), esc(s["created_by"]),
                  esc(s["comment"]))
    ap.out.print(t)


@app.command("expire")
def expire(
    ctx: typer.Context,
    silence_id: Annotated[int, typer.Argument(metavar="ID", help="The silence's id (silence list).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """End a silence now."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/silences/expire", {"id": silence_id})
    if json_out:
        ap.print_json(doc)
    else:
        ap.echo(f"silence {doc['id']} ({doc['match']}) expired")
