"""shipyard accessory: start, stop, show and read the logs of an environment's dev accessories."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Dev accessories (PostgreSQL, Redis, commands) beside an environment.",
                  no_args_is_help=True)

EnvOpt = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
Names = Annotated[list[str] | None, typer.Argument(help="Only these accessories (default: all).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _call(ctx: typer.Context, env: str, action: str, names: list[str] | None, json_out: bool) -> None:
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/accessories", {"env": env, "action": action, "names": names or []},
                         timeout=120)
    if json_out:
        ap.print_json(doc)
        return
    for a in doc["accessories"]:
        state = "running" if a["running"] else "stopped"
        ap.echo(f"{a['name']} ({a['kind']}): {state}" + (f" on port {a['port']}, {a['var']}={a['url']}"
                                                          if a.get("url") else "") + f"  data: {a['data']}")


@app.command("start")
def start(ctx: typer.Context, env: EnvOpt, names: Names = None, json_out: JsonOpt = False) -> None:
    """Start them (data kept from the last run); their URLs go into the environment's config."""
    _call(ctx, env, "start", names, json_out)


@app.command("stop")
def stop(ctx: typer.Context, env: EnvOpt, names: Names = None, json_out: JsonOpt = False) -> None:
    """Stop them; their data stays under .shipyard/accessories/."""
    _call(ctx, env, "stop", names, json_out)


@app.command("status")
def status(ctx: typer.Context, env: EnvOpt, names: Names = None, json_out: JsonOpt = False) -> None:
    """Running or not, port, URL, data directory."""
    _call(ctx, env, "status", names, json_out)


@app.command("logs")
def logs(ctx: typer.Context, env: EnvOpt, names: Names = None,
         lines: Annotated[int, typer.Option("--lines", "-n", help="Newest lines of each.")] = 50) -> None:
    """The last lines of their output (read from the files; the control plane need not run)."""
    from pathlib import Path

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    declared = dict(ap.spec.env(env).accessories)
    for name in names or sorted(declared):
        if name not in declared:
            ap.abort(f"unknown accessory {name!r} (known: {', '.join(sorted(declared)) or 'none'})", 2)
        d = ap.paths.state / "accessories" / env / name
        log = Path(d / ("server.log" if declared[name].kind == "postgres" else "output.log"))
        text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
        for line in text:
            ap.echo(f"[{name}] {line}")
