"""shipyard approve ID: approve a deployment waiting for approval (the approver or admin role)."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    deployment: Annotated[int, typer.Argument(help="The waiting deployment's id.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="Why (recorded).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Approve; with enough approvals the deployment starts (its plan as prepared when it was asked for)."""
    from shipyard.cli.approve_render import decide

    decide(ctx, "approve", deployment, message, json_out)
