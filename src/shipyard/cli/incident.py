"""shipyard incident: open, update and resolve incidents on the public status page."""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(help="Incidents on the public status page (investigating → identified → monitoring → resolved).",
                  no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="What to tell users (shown on the page).")]


def _show(ctx: typer.Context, doc: dict[str, Any], json_out: bool, first: bool = False) -> None:
    from shipyard.cli.app import AppContext, esc

    ap = AppContext.of(ctx)
    if json_out:
        ap.print_json(doc)
    elif first:
        ap.echo(str(doc["id"]))  # the id alone: `id=$(shipyard incident open ...)`
    else:
        ap.echo(f"incident {doc['id']}: {esc(doc['status'])} - {esc(doc['title'])}")


@app.command("open")
def open_(
    ctx: typer.Context,
    component: Annotated[list[str], typer.Option("--component", "-c", help="Affected component (repeatable).")],
    message: MessageOpt,
    impact: Annotated[str, typer.Option("--impact", help="none, minor, major or critical.")] = "major",
    title: Annotated[str | None, typer.Option("--title", help="Its title (default: the message).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Open an incident (status investigating) and print its id."""
    from shipyard.cli.app import AppContext

    doc = AppContext.of(ctx).client.call("POST", "/v1/incident", {
        "action": "open", "components": component, "impact": impact, "message": message, "title": title})
    _show(ctx, doc, json_out, first=True)


@app.command("update")
def update(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(metavar="ID", help="The incident's id.")],
    status: Annotated[str, typer.Option("--status", help="investigating, identified, monitoring or resolved.")],
    message: MessageOpt,
    impact: Annotated[str | None, typer.Option("--impact", help="Change its impact.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a timestamped update to an incident."""
    from shipyard.cli.app import AppContext

    doc = AppContext.of(ctx).client.call("POST", "/v1/incident", {
        "action": "update", "id": incident_id, "status": status, "message": message, "impact": impact})
    _show(ctx, doc, json_out)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    incident_id: Annotated[int, typer.Argument(metavar="ID", help="The incident's id.")],
    message: MessageOpt,
    json_out: JsonOpt = False,
) -> None:
    """Resolve an incident with a last update."""
    from shipyard.cli.app import AppContext

    doc = AppContext.of(ctx).client.call("POST", "/v1/incident",
                                         {"action": "resolve", "id": incident_id, "message": message})
    _show(ctx, doc, json_out)


@app.command("list")
def list_(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only unresolved incidents.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    from shipyard.cli.app import AppContext, esc

    ap = AppContext.of(ctx)
    docs = ap.client.call("GET", "/v1/incidents" + ("?open=1" if open_only else ""))
    if json_out:
        ap.print_json(docs)
        return
    if not docs:
        ap.echo("no incidents")
    for d in docs:
        ap.echo(f"{d['id']}  {esc(d['status']):<13} {esc(d['impact']):<8} {esc(', '.join(d['components']))}: "
                f"{esc(d['title'])}")
