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
    t = Table(box=None)
    for col in ("id", "when", "kind", "release", "from", "outcome", "took", "reason"):
        t.add_column(col)
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
        t.add_row(str(r["deployment"]), when, r["kind"], r["release"] or "-", r["previous_release"] or "-",
                  r["outcome"], f"{r['duration_s']:.1f}s" if r["duration_s"] is not None else "-",
                  (r["reason"] or "")[:240])
    console = Console(highlight=False)
    console.print(t)
    from shipyard.cli.render import render_failure

    for r in rows[:5]:
        if (r.get("rollback") or {}).get("canary"):
            console.print(f"deployment {r['deployment']}:")
            render_failure(console, r["rollback"])
