"""shipyard reject ID: end a deployment waiting for approval, `rejected` (nothing serving changes)."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    deployment: Annotated[int, typer.Argument(help="The waiting deployment's id.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="Why (recorded).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Reject: the deployment ends without starting."""
    from shipyard.cli.approve_render import decide

    decide(ctx, "reject", deployment, message, json_out)
