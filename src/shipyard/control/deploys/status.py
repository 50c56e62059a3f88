"""The status document: what serves where, with which weights and instances."""

from __future__ import annotations

from typing import Any

from shipyard.control.deploys.registry import Registry
from shipyard.control.instancespec import InstanceStatus
from shipyard.control.target import Targets
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store


def shown_role(role: str) -> str:
    """The role as the docs and the CLI name it: a release kept warm (``"old"`` in the routing state and the
    instances table, no traffic) is ``"warm"``; the router's roles (stable, canary, preview) are unchanged."""
    return "warm" if role == "old" else role


def status_json(spec: Spec, env: str | None, *, store: Store, targets: Targets, registry: Registry) -> Any:
    if env:
        spec.env(env)  # unknown environment → clear error
    names = [env] if env else sorted(spec.environments)
    out = [_one(spec, name, store, targets, registry) for name in names]
    return out[0] if env else out


def _one(spec: Spec, name: str, store: Store, targets: Targets, registry: Registry) -> dict[str, Any]:
    rec = store.get_environment(name)
    rt = targets.get(name).routing
    envspec = spec.environments.get(name)
    port = envspec.port if envspec is not None else rt.port
    running = store.running_deployment(name)
    last = store.list_deployments(name, limit=1)
    runs = store.list_backup_runs(name, limit=20)
    drills = store.list_drills(name, limit=1)
    backup = None
    if runs or drills:
        ok_runs = [r for r in runs if r.status == "ok"]
        problems = [r for r in runs if r.status != "ok"]
        backup = {"last_ok": ok_runs[0].finished_at if ok_runs else None,
                  "last_problem": ({"status": problems[0].status, "source": problems[0].source,
                                    "at": problems[0].started_at} if problems else None),
                  "last_drill": ({"ok": drills[0].ok, "at": drills[0].started_at} if drills else None)}
    canary, watch = registry.canary(name), registry.watch(name)
    return {
        "env": name,
        "backup": backup,
        "url": f"http://127.0.0.1:{port}",
        "release": rec.current_release if rec else None,
        "previous_release": rec.previous_release if rec else None,
        "weights": {r: w for r, w in rt.weights.items() if w > 0},
        "processes": _per_process(rt.instances()),
        "instances": [{"id": s.id, "process": s.process, "release": s.release, "pid": s.pid, "port": s.port,
                       "ready": bool(s.ready),
                       "state": s.state, "restarts": s.restarts, "role": shown_role(rt.role(s.release)),
                       "routed": s.id not in rt.unrouted, "cpu_percent": s.cpu_percent,
                       "rss_bytes": s.rss_bytes, "memory_limit": s.memory_limit, "cpu_limit": s.cpu_limit,
                       "limits_enforced": s.limits_enforced, "oom_kills": s.oom_kills,
                       "last_exit": s.last_exit} for s in rt.instances()],
        "canary": canary.to_json() if canary else None,
        "watch": watch.to_json() if watch else None,
        "deployment": ({"id": running.id, "kind": running.kind, "release": running.release}
                       if running else None),
        "last_deployment": ({"id": last[0].id, "kind": last[0].kind, "release": last[0].release,
                             "outcome": last[0].status, "reason": last[0].reason,
                             "finished_at": last[0].finished_at} if last else None),
    }


def _per_process(instances: list[InstanceStatus]) -> dict[str, dict[str, Any]]:
    """Per process type: how many run, how many are ready, of which releases."""
    out: dict[str, dict[str, Any]] = {}
    for s in sorted(instances, key=lambda s: (s.process != "web", s.process)):
        p = out.setdefault(s.process, {"running": 0, "ready": 0, "releases": [], "routed": s.process == "web"})
        p["running"] += 1
        p["ready"] += int(bool(s.ready))
        if s.release not in p["releases"]:
            p["releases"].append(s.release)
    return out
