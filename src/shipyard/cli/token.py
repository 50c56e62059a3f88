"""shipyard token create|list|revoke: identities for people and CI jobs (docs/access.md).

The token is printed once, at creation; the control plane keeps only its digest.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

app = typer.Typer(help="Identities and their tokens: viewer, deployer, approver, admin.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ROLES = ("viewer", "deployer", "approver", "admin")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who: a person or a CI job (e.g. ci-bot).")],
    role: Annotated[str, typer.Option("--role", help="viewer, deployer, approver or admin.")],
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="Only this environment (repeatable).")] = None,
    json_out: Json = False,
) -> None:
    """Create an identity and print its token (once: it is not kept in clear)."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    if role not in ROLES:
        ap.abort(f"--role: unknown role {role!r} (expected one of {', '.join(ROLES)})", 2)
    for e in env or []:
        ap.env(e)  # unknown environment: exit 2 before anything is created
    doc = ap.client.call("POST", "/v1/tokens", {"name": name, "role": role, "envs": env or None})
    if json_out:
        ap.print_json(doc)
        return
    where = ", ".join(doc["envs"]) if doc["envs"] else "every environment"
    ap.echo(f"created {doc['name']} ({doc['role']}, {where}); its token, shown only now:", stderr=True)
    ap.echo(doc["token"])


@app.command("list")
def list_(ctx: typer.Context, json_out: Json = False) -> None:
    """Identities, their roles and environments (never a token)."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    rows = ap.client.call("GET", "/v1/tokens")
    if json_out:
        ap.print_json(rows)
        return
    if not rows:
        ap.echo("no identities besides the project's own (local, admin)")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"]))
        envs = ",".join(r["envs"]) if r["envs"] else "*"
        ap.echo(f"{r['name']}\t{r['role']}\t{envs}\tcreated {when} by {r['created_by']}"
                + ("\tREVOKED" if r["revoked"] else ""))


@app.command("revoke")
def revoke(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The identity.")], json_out: Json = False
           ) -> None:
    """Refuse this identity's token from now on."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/tokens/revoke", {"name": name})
    if json_out:
        ap.print_json(doc)
    else:
        ap.echo(f"revoked {doc['name']}: its token is refused from now on")
