"""shipyard jobs: the scheduled jobs ([jobs.NAME]), their next and last runs; ``jobs run NAME`` runs one now."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Scheduled jobs: schedules, last runs and exit codes; run one now.",
                  invoke_without_command=True)


@app.callback()
def listing(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Every job per environment: schedule (in the environment's time zone), next run, last runs."""
    if ctx.invoked_subcommand is not None:
        return
    import time
    from urllib.parse import urlencode

    from rich.markup import escape as esc
    from rich.table import Table

    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("GET", "/v1/jobs" + (f"?{urlencode({'env': env})}" if env else ""))
    if json_out:
        ap.print_json(doc)
        return
    if not doc["jobs"]:
        ap.echo("no jobs ([jobs.NAME] in shipyard.toml)")
        return
    t = Table(box=None, pad_edge=False)
    for col in ("job", "env", "schedule", "next run", "last run", "status", "exit", "took"):
        t.add_column(col, no_wrap=True)
    for j in doc["jobs"]:
        last = j["runs"][0] if j["runs"] else None
        nxt = time.strftime("%Y-%m-%d %H:%M", time.localtime(j["next_run"])) if j.get("next_run") else "-"
        t.add_row(esc(j["job"]), esc(j["env"]), esc(f"{j['schedule']} ({j['timezone']})"), nxt,
                  time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["started_at"])) if last else "never",
                  esc(("running" if j["running"] else last["status"]) if last else "-"),
                  str(last["exit_code"]) if last and last["exit_code"] is not None else "-",
                  f"{last['duration_s']:.1f}s" if last and last.get("duration_s") is not None else "-")
    ap.out.print(t)


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The job ([jobs.NAME]).")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Run a job now in the release serving ENV; exit 1 when it fails or times out."""
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    doc = ap.client.call("POST", "/v1/jobs/run", {"env": env, "job": name}, timeout=86400 + 60)
    if json_out:
        ap.print_json(doc)
    else:
        if doc.get("output_tail"):
            ap.echo(doc["output_tail"])
        took = f" in {doc['duration_s']:.1f}s" if doc.get("duration_s") is not None else ""
        ap.echo(f"job {name} on {env}: {doc['status']}{took}"
                + (f" (exit {doc['exit_code']})" if doc.get("exit_code") is not None else "")
                + (f": {doc['reason']}" if doc.get("reason") else ""), stderr=doc["status"] != "succeeded")
    if doc["status"] not in ("succeeded",):
        raise typer.Exit(1)
