"""shipyard notify: send a test notification to a receiver; list recent deliveries."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

app = typer.Typer(help="Notification receivers: test one, see what was delivered.", no_args_is_help=True)


@app.command("test")
def test(
    ctx: typer.Context,
    receiver: Annotated[str, typer.Option("--receiver", "-r", help="A receiver name (notifications.receivers).")],
    env: Annotated[str | None, typer.Option("--env", "-e", help="Whose secrets it uses (default: the first).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Send one test notification to RECEIVER (routes and silences aside); exit 1 if it was not delivered."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    if ap.remote is None:
        ap.check_env(env or ap.spec.env_names[0])
        ap.check_receiver_secrets([env or ap.spec.env_names[0]], only=receiver)
    doc: dict[str, Any] = ap.client.call("POST", "/v1/notify/test", {"receiver": receiver, "env": env},
                                         timeout=90.0)
    d = doc["delivery"]
    if json_out:
        ap.print_json(doc)
    elif d["status"] == "delivered":
        ap.echo(f"delivered to {receiver} ({doc['kind']}) as notification {d['id']}")
    if d["status"] != "delivered":
        why = d["last_error"] or "no answer yet"
        ap.abort(f"not delivered to {receiver}: {why} (notification {d['id']} is {d['status']}; it is retried "
                 "with backoff)", 1)


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    receiver: Annotated[str | None, typer.Option("--receiver", "-r", help="Only this receiver.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recent notifications: to whom, what, delivered or pending (with the last error)."""
    from urllib.parse import urlencode

    from rich.table import Table

    from shipyard.cli.app import AppContext, esc

    ap = AppContext.of(ctx)
    q = {"limit": str(limit), **({"receiver": receiver} if receiver else {})}
    doc: dict[str, Any] = ap.client.call("GET", "/v1/notify/deliveries?" + urlencode(q))
    if json_out:
        ap.print_json(doc)
        return
    if not doc["deliveries"]:
        ap.echo("no deliveries" + (f" to {receiver}" if receiver else ""))
        return
    t = Table(box=None)
    for col in ("id", "at", "receiver", "status", "tries", "title", "error"):
        t.add_column(col, no_wrap=col not in ("title", "error"))
    for d in doc["deliveries"]:
        t.add_row(str(d["id"]), time.strftime("%m-%d %H:%M:%S", time.localtime(d["created_at"])), esc(d["receiver"]),
                  d["status"], str(d["attempts"]), esc(d["title"] or ""), esc(d["last_error"] or ""))
    ap.out.print(t)
