"""The status document: what serves where, with which weights and instances."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon


def status_json(d: Daemon, env: str | None) -> Any:
    spec = d.load_spec()
    names = [env] if env else sorted(spec.environments)
    if env:
        spec.env(env)  # unknown environment → clear error
    out = []
    for name in names:
        rec = d.store.get_environment(name)
        rt = d.runtime(name)
        try:
            port = spec.env(name).port
        except ShipyardError:
            port = rt.port
        running = d.store.running_deployment(name)
        last = d.store.list_deployments(name, limit=1)
        runs = d.store.list_backup_runs(name, limit=20)
        drills = d.store.list_drills(name, limit=1)
        backup = None
        if runs or drills:
            ok_runs = [r for r in runs if r.status == "ok"]
            problems = [r for r in runs if r.status != "ok"]
            backup = {"last_ok": ok_runs[0].finished_at if ok_runs else None,
                      "last_problem": ({"status": problems[0].status, "source": problems[0].source,
                                        "at": problems[0].started_at} if problems else None),
                      "last_drill": ({"ok": drills[0].ok, "at": drills[0].started_at} if drills else None)}
        out.append({
            "env": name,
            "backup": backup,
            "url": f"http://127.0.0.1:{port}",
            "release": rec.current_release if rec else None,
            "previous_release": rec.previous_release if rec else None,
            "weights": {r: w for r, w in rt.weights.items() if w > 0},
            "instances": [{"id": s.id, "release": s.release, "pid": s.pid, "port": s.port, "ready": bool(s.ready),
                           "state": s.state, "restarts": s.restarts, "role": rt.roles.get(s.release, "stable"),
                           "routed": s.id not in rt.unrouted, "cpu_percent": s.cpu_percent,
                           "rss_bytes": s.rss_bytes} for s in rt.instances()],
            "canary": d.canaries[name].to_json() if name in d.canaries else None,
            "watch": d.watches[name].to_json() if name in d.watches else None,
            "deployment": ({"id": running.id, "kind": running.kind, "release": running.release}
                           if running else None),
            "last_deployment": ({"id": last[0].id, "kind": last[0].kind, "release": last[0].release,
                                 "outcome": last[0].status, "reason": last[0].reason,
                                 "finished_at": last[0].finished_at} if last else None),
        })
    return out[0] if env else out
