"""shipyard abort: roll the running canary back now (100% to the stable release)."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose canary to abort.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Abort the running canary: traffic back to stable, canary drained and stopped."""
    from shipyard.cli.canary_control import send

    send(ctx, env, "abort", json_out)
