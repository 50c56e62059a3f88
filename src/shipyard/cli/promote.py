"""shipyard promote: end the canary's current step (a pause or manual gate), or with --full skip the rest."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose canary to promote.")],
    full: Annotated[bool, typer.Option("--full", help="Skip all remaining steps: 100% now.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Resume a paused canary or pass a manual gate; --full promotes it to 100% at once."""
    from shipyard.cli.canary_control import send

    send(ctx, env, "promote_full" if full else "promote", json_out)
