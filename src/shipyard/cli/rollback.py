"""shipyard rollback: back to the previous (or a named) release — a router switch when it is warm."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to roll back.")],
    to: Annotated[str | None, typer.Option("--to", help="Release id to roll back to (default: previous).")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show the steps; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Roll an environment back to the previous release (or --to RELEASE)."""
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.cli.render import follow
    from shipyard.control.client import ControlClient
    from shipyard.control.paths import Paths

    project = find_project()
    load_project_spec(project).env(env)
    client = ControlClient(Paths(project.dir))
    events = client.stream("/v1/rollback", {"env": env, "to": to, "plan": plan})
    raise typer.Exit(follow(events, as_json=json_out, plan_only=plan))
