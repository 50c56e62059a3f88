"""shipyard lock: hold an environment's deploys (maintenance), say why, and release it."""

from __future__ import annotations

import time
from typing import Annotated

import typer

app = typer.Typer(help="Hold an environment's deploys with a message (rollbacks still work).",
                  no_args_is_help=True)


@app.command("acquire")
def acquire(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    message: Annotated[str, typer.Option("--message", "-m", help="Why deploys are held (shown to whoever tries).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Refuse deploys to ENV (exit 3, naming you and the message) until released."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/lock", {"env": env, "action": "acquire", "message": message})
    if json_out:
        ap.print_json(doc)
    else:
        ap.echo(f"{env} locked by {doc['holder']}: {doc['message']}")


@app.command("release")
def release(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Let deploys to ENV through again."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/lock", {"env": env, "action": "release"})
    if json_out:
        ap.print_json(doc)
    else:
        ap.echo(f"{env} unlocked" if doc["was_locked"] else f"{env} was not locked")


@app.command("status")
def status(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Which environments are locked, by whom, since when and why."""
    from urllib.parse import urlencode

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    held = ap.client.call("GET", "/v1/locks" + ("?" + urlencode({"env": env}) if env else ""))
    if json_out:
        ap.print_json(held)
        return
    if not held:
        ap.echo("no environment is locked")
    for h in held:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["since"]))
        ap.echo(f"{h['env']}: locked by {h['holder']} since {since}: {h['message']}")
