"""shipyard pause: hold the running canary at its current weight (checks keep running)."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose canary to pause.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Pause the running canary; a failing judgement or trigger still rolls it back."""
    from shipyard.cli.canary_control import send

    send(ctx, env, "pause", json_out)
