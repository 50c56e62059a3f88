"""shipyard resume: let a paused canary go on."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose canary to resume.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Resume a paused canary (paused by `shipyard pause` or for being inconclusive too long)."""
    from shipyard.cli.canary_control import send

    send(ctx, env, "resume", json_out)
