"""status / history for environments with ``target = "kubernetes"``, without a control plane: the deployments
from the state database (the CLI recorded them, control/kube/state.py), what runs read from the API server.
Helper of cli/status.py and cli/history.py."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.cli.app import AppContext, esc
from shipyard.control.kube.cluster import Cluster
from shipyard.control.kube.state import StateDB, live_status


def history_rows(app: AppContext, env: str, limit: int) -> list[dict[str, Any]]:
    with StateDB(app.project.state_dir) as db:
        return db.rows(env, limit)


def status(app: AppContext, env: str, as_json: bool) -> None:
    cluster = Cluster.connect(app.env(env).kube, app.project.dir, env)

    async def main() -> dict[str, Any]:
        try:
            with StateDB(app.project.state_dir) as db:
                return await live_status(cluster, app.spec.app.name, env, db.store)
        finally:
            await cluster.close()

    doc = asyncio.run(main())
    if as_json:
        app.print_json(doc)
        return
    out = app.out
    out.print(f"[bold]{esc(env)}[/]  kubernetes namespace {esc(doc['namespace'])}  release "
              f"[bold]{esc(doc['release'] or '-')}[/]  {doc['ready']}/{doc['replicas']} ready"
              + (f"  (slot {esc(doc['slot'])})" if doc["slot"] else ""))
    if doc["release"] != doc["recorded_release"]:
        out.print(esc(f"  the state database last recorded {doc['recorded_release'] or 'nothing'} as serving"))
    d = doc["deployment"] or doc["last_deployment"]
    if doc["deployment"]:
        out.print(esc(f"  deployment {d['id']} running: {d['kind']} of {d['release']}"))
    elif d:
        out.print(esc(f"  last deployment {d['id']}: {d['kind']} of {d['release']} {d['outcome']}"
                      + (f" — {d['reason']}" if d.get("reason") else "")))
    if doc["autoscaler"]:
        a = doc["autoscaler"]
        out.print(esc(f"  autoscaler {a['min']}–{a['max']}, current {a['current']}, desired {a['desired']}"))
    for dep in doc["deployments"]:
        out.print(esc(f"  deployment {dep['name']}{' (serving)' if dep['serving'] else ''}: {dep['release']} "
                      f"{dep['ready']}/{dep['replicas']} ready, {dep['updated']} updated, {dep['available']} "
                      f"available — {dep['image']}"))
    for p in doc["pods"]:
        out.print(esc(f"    pod {p['name']} {p['phase']} {'ready' if p['ready'] else 'not ready'} "
                      f"{p['release']} restarts {p['restarts']}"))
