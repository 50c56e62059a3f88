"""``status`` while the control plane is down: what the router, which keeps serving, knows.

The router answers on its control socket (``run/router.sock``; its pid in ``run/router.json``) with each
environment's table (releases, weights, instances and their readiness, draining / paused / maintenance)
and its traffic (``stats``). Everything else — deployments, canaries, watches, backups, instance pids
and restarts — is in the state database, which only the control plane reads: the CLI never opens it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.cli.app import esc

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.cli.app import AppContext

WINDOW_S = 60.0
TIMEOUT_S = 2.0


def router_view(app: AppContext, env: str | None) -> dict[str, Any]:
    """The status document from the router alone: ``{control_plane, router, environments}``."""
    from shipyard.primitives.process import is_alive
    from shipyard.primitives.routerproto import RouterClient, RouterError

    doc: dict[str, Any] = {"control_plane": {"running": False, "start": "shipyard up --detach"},
                           "router": {"running": False, "pid": None}, "environments": []}
    try:
        info = json.loads(app.paths.router_pid.read_text())
        pid, created = int(info["pid"]), float(info["create_time"])
    except (OSError, ValueError, KeyError, TypeError):
        return doc
    if not is_alive(pid, created):
        return doc
    client = RouterClient(app.paths.router_socket)
    try:
        envs = client.ping(timeout=TIMEOUT_S).get("envs", [])
    except RouterError:
        return doc
    doc["router"] = {"running": True, "pid": pid}
    for name in [e for e in envs if env is None or e == env]:
        try:
            got = client.call("get_table", env=name, timeout=TIMEOUT_S)
            stats = client.call("stats", env=name, window_s=WINDOW_S, timeout=TIMEOUT_S)
        except RouterError as err:  # e.g. removed between ping and get_table
            doc["environments"].append({"env": name, "error": str(err)})
            continue
        doc["environments"].append(_env_doc(name, got, stats))
    return doc


def _env_doc(name: str, got: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    table = got.get("table") or {}
    rel_stats = stats.get("releases") or {}
    weights = {r: w for r, w in (table.get("weights") or {}).items() if w > 0}
    instances = []
    for pool in table.get("pools") or []:
        per = (rel_stats.get(pool["release"]) or {}).get("instances") or {}
        for i in pool.get("instances") or []:
            s = per.get(i["id"]) or {}
            instances.append({"id": i["id"], "release": pool["release"], "role": _role(pool, weights),
                              "port": i["port"], "ready": bool(i.get("ready", True)),
                              "draining": bool(s.get("draining")), "requests": s.get("requests", 0),
                              "errors": s.get("errors", 0), "inflight": s.get("inflight", 0)})
    totals = [r for r in rel_stats.values() if isinstance(r, dict)]
    requests = sum(int(r.get("requests", 0)) for r in totals)
    errors = sum(int(r.get("errors", 0)) for r in totals)
    serving = max(weights, key=lambda r: weights[r]) if weights else None
    return {"env": name, "url": f"http://127.0.0.1:{table.get('port')}", "release": serving, "weights": weights,
            "instances": instances, "draining": got.get("draining", []), "paused": bool(got.get("paused")),
            "maintenance": bool(got.get("maintenance")),
            "traffic": {"window_s": WINDOW_S, "requests": requests, "errors": errors,
                        "error_rate": errors / requests if requests else 0.0}}


def _role(pool: dict[str, Any], weights: dict[str, float]) -> str:
    # A stable pool the table gives no traffic is the release kept warm (as `status` names it).
    role = str(pool.get("role", "stable"))
    return "warm" if role == "stable" and weights and pool["release"] not in weights else role


def render_router_view(console: Console, doc: dict[str, Any]) -> None:
    from rich.table import Table

    if not doc["router"]["running"]:
        console.print("the router is not running either: nothing serves")
        return
    console.print(esc(f"the control plane is down; the router (pid {doc['router']['pid']}) still serves "
                      "its last table:"))
    for e in doc["environments"]:
        if e.get("error"):
            console.print(esc(f"{e['env']}: {e['error']}"))
            continue
        weights = ", ".join(f"{r} {w:g}%" for r, w in e["weights"].items()) or "no traffic"
        flags = [f for f in ("paused", "maintenance") if e[f]]
        console.print(f"[bold]{esc(e['env'])}[/]  {esc(e['url'])}  release [bold]{esc(e['release'] or '-')}[/]  "
                      f"({esc(weights)})" + (f"  [yellow]{esc(', '.join(flags))}[/]" if flags else ""))
        t = e["traffic"]
        console.print(f"  last {t['window_s']:g}s: {t['requests']} requests, {t['error_rate']:.1%} errors")
        if e["instances"]:
            table = Table(box=None, pad_edge=False)
            for col in ("instance", "release", "role", "port", "ready", "draining", "requests", "inflight"):
                table.add_column(col, no_wrap=col in ("instance", "release"))
            for i in e["instances"]:
                table.add_row(esc(i["id"]), esc(i["release"]), esc(i["role"]), str(i["port"]),
                              "yes" if i["ready"] else "no", "yes" if i["draining"] else "no", str(i["requests"]),
                              str(i["inflight"]))
            console.print(table)
    console.print("[dim]deployments, canaries, backups, pids and restarts are in the state database, which the "
                  "control plane reads[/]")
