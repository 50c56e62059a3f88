"""shipyard rollback: back to the previous (or a named) release — a router switch when it is warm."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to roll back.")],
    to: Annotated[str | None, typer.Option("--to", help="Release id to roll back to (default: previous).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show the steps; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Roll an environment back to the previous release (or --to RELEASE)."""
    from shipyard.cli.app import AppContext
    from shipyard.cli.render import follow

    app = AppContext.of(ctx)
    app.check_env(env)
    if app.remote is None and app.env(env).target == "kubernetes":
        from shipyard.cli.kube_deploy import rollback as kube_rollback

        raise typer.Exit(kube_rollback(app, env, to, plan, json_out))
    events = app.client.stream("/v1/rollback", {"env": env, "to": to, "plan": plan})
    raise typer.Exit(follow(app, events, as_json=json_out, plan_only=plan))
