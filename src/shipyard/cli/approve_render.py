"""What ``approve`` and ``reject`` share: one call, one line (or one JSON document)."""

from __future__ import annotations

import typer


def decide(ctx: typer.Context, decision: str, deployment: int, message: str | None, json_out: bool) -> None:
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", f"/v1/{decision}", {"deployment": deployment, "message": message})
    if json_out:
        ap.print_json(doc)
    elif doc["status"] == "rejected":
        ap.echo(f"deployment {deployment} rejected")
    elif doc["status"] == "running":
        ap.echo(f"deployment {deployment} approved ({len(doc['approvals'])}/{doc['required']}): it has started "
                f"(`shipyard status` or `history` to follow it)")
    else:
        ap.echo(f"deployment {deployment} approved ({len(doc['approvals'])}/{doc['required']}); it waits for "
                f"{doc['required'] - len(doc['approvals'])} more")
