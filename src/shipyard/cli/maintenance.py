"""shipyard maintenance: switch an environment's maintenance page on or off, or schedule a window."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(help="Maintenance: the router answers 503 with Retry-After and a page (--allow networks pass).",
                  no_args_is_help=True)

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
AllowOpt = Annotated[list[str] | None, typer.Option("--allow", help="A network that still passes (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _line(m: dict[str, Any]) -> str:
    from shipyard.cli.app import esc

    allow = f" (passes: {', '.join(m['allow'])})" if m["allow"] else ""
    until = "until 'maintenance off'" if m["ends_at"] - m["starts_at"] > 365 * 86400 else f"{m['starts']} to {m['ends']}"
    return (f"{m['id']}  {esc(m['env'])}  {m['status']:<11} {until}{' [switch]' if m['switch'] else ''}{allow}: "
            f"{esc(m['message'])}")


@app.command("on")
def on(ctx: typer.Context, env: EnvOpt,
       message: Annotated[str, typer.Option("--message", "-m", help="Shown on the maintenance page.")] = "",
       allow: AllowOpt = None, json_out: JsonOpt = False) -> None:
    """Answer every request to ENV with 503 and the maintenance page, now, until `maintenance off`."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/maintenance", {"action": "on", "env": env, "message": message,
                                                     "allow": allow or []})
    ap.print_json(doc) if json_out else ap.echo(f"{env}: maintenance on - {_line(doc)}")


@app.command("off")
def off(ctx: typer.Context, env: EnvOpt, json_out: JsonOpt = False) -> None:
    """End ENV's maintenance now (manual or scheduled) and serve traffic again."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/maintenance", {"action": "off", "env": env})
    ap.print_json(doc) if json_out else ap.echo(f"{env}: maintenance off")


@app.command("schedule")
def schedule(
    ctx: typer.Context, env: EnvOpt,
    at: Annotated[str, typer.Option("--at", help="Start, ISO 8601 with an offset: 2026-12-03T02:00+09:00.")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What it is for (public).")],
    switch: Annotated[bool, typer.Option("--switch", help="Turn the router's maintenance on and off at its times.")] = False,
    allow: AllowOpt = None, json_out: JsonOpt = False,
) -> None:
    """Schedule a maintenance window: on the status page at once, notices 24 h before, at start and end."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/maintenance", {"action": "schedule", "env": env, "at": at, "for": duration,
                                                     "message": message, "switch": switch, "allow": allow or []})
    ap.print_json(doc) if json_out else ap.echo(f"scheduled {_line(doc)}")


@app.command("cancel")
def cancel(ctx: typer.Context, maintenance_id: Annotated[int, typer.Argument(metavar="ID")],
           json_out: JsonOpt = False) -> None:
    """Cancel a scheduled maintenance window."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/maintenance", {"action": "cancel", "id": maintenance_id})
    ap.print_json(doc) if json_out else ap.echo(f"cancelled {_line(doc)}")


@app.command("list")
def list_(ctx: typer.Context, env: Annotated[str | None, typer.Option("--env", "-e")] = None,
          json_out: JsonOpt = False) -> None:
    """Maintenance in progress and to come."""
    from urllib.parse import urlencode

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    docs = ap.client.call("GET", "/v1/maintenance" + ("?" + urlencode({"env": env}) if env else ""))
    if json_out:
        ap.print_json(docs)
        return
    if not docs:
        ap.echo("no maintenance scheduled")
    for d in docs:
        ap.echo(_line(d))
