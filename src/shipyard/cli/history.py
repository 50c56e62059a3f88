"""shipyard history: an environment's deployments, newest first."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    limit: Annotated[int, typer.Option("--limit", help="How many deployments.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List deployments and rollbacks with their outcome and steps."""
    from rich.console import Console
    from rich.table import Table

    from shipyard.cli.common import find_project, load_project_spec, print_json
    from shipyard.primitives.store import open_store

    project = find_project()
    load_project_spec(project).env(env)
    store = open_store(None, project.state_dir)
    try:
        deps = store.list_deployments(env, limit=limit)
        rows: list[dict[str, Any]] = []
        for d in deps:
            steps = store.list_steps(d.id)
            dur = (d.finished_at - d.started_at) if d.finished_at else None
            rows.append({"deployment": d.id, "env": d.env, "kind": d.kind, "release": d.release,
                         "previous_release": d.previous_release, "strategy": d.strategy, "outcome": d.status,
                         "reason": d.reason, "started_at": d.started_at, "finished_at": d.finished_at,
                         "duration_s": round(dur, 3) if dur is not None else None,
                         # Why it was rolled back: failing conditions with observed values and windows.
                         "rollback": (d.detail or {}).get("rollback"), "trigger": (d.detail or {}).get("trigger"),
                         "steps": [{"name": s.name, "status": s.status, "started_at": s.started_at,
                                    "duration_s": s.duration_s} for s in steps]})
    finally:
        store.close()
    if json_out:
        print_json(rows)
        return
    console = Console(highlight=False)
    wide = console.width >= 140  # "from" only when it fits; --json has everything
    t = Table(box=None)
    for col in ("id", "when", "kind", "release", *(("from",) if wide else ()), "outcome", "took"):
        t.add_column(col, no_wrap=True)
    # The reason takes what the other columns leave; it is printed in full below for the newest ones.
    t.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=max(12, console.width - (100 if wide else 72)))
    for r in rows:
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(r["started_at"]))
        t.add_row(str(r["deployment"]), when, r["kind"], r["release"] or "-",
                  *((r["previous_release"] or "-",) if wide else ()), r["outcome"],
                  f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-", r["reason"] or "")
    console.print(t)
    from shipyard.cli.render import render_failure

    # The newest problems in full: the reason and, for a canary, each failing condition with its window.
    for r in rows[:5]:
        if r["reason"] and (len(r["reason"]) > 60 or (r.get("rollback") or {}).get("canary")):
            console.print(f"deployment {r['deployment']} ({r['outcome']}): {r['reason']}")
            render_failure(console, r.get("rollback"))

