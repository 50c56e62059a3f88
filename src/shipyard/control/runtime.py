"""One environment's routing state: the port, weights by release, instances out of rotation, roles,
how each release is launched here, and the router settings — and the routing table built from it.

``EnvRouting`` holds state only; the target changes it and pushes its ``table()`` through the router
link. Every change is saved in the state database, so a restarted control plane finds the same picture.
"""

from __future__ import annotations

from typing import Any

from shipyard.control.instancespec import InstanceStatus
from shipyard.control.supervisor import Supervisor
from shipyard.engine.rollout.launch import Launch
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store

ROUTER_ROLES = ("stable", "canary", "preview")


class EnvRouting:
    def __init__(self, name: str, supervisor: Supervisor, store: Store, clock: Clock) -> None:
        self.name = name
        self.supervisor = supervisor
        self.store = store
        self.clock = clock
        self.port: int | None = None
        self.weights: dict[str, int] = {}
        self.unrouted: set[str] = set()
        self.roles: dict[str, str] = {}  # release -> stable | canary | preview | old
        self.launch: dict[str, Launch] = {}  # release -> how its instances run here
        self.router_settings: dict[str, Any] = {}
        self.sticky: dict[str, str] | None = None

    def instances(self) -> list[InstanceStatus]:
        return [s for s in self.supervisor.all(self.name) if s.state != "stopped"]

    def ids_of(self, release: str) -> list[str]:
        return [s.id for s in self.instances() if s.release == release]

    def ready_ids(self, release: str) -> list[str]:
        return [s.id for s in self.instances() if s.release == release and s.ready and s.id not in self.unrouted]

    def role(self, release: str) -> str:
        return self.roles.get(release, "stable")

    def table(self) -> dict[str, Any]:
        pools: dict[str, list[dict[str, Any]]] = {}
        for st in self.instances():
            if st.id in self.unrouted:
                continue
            pools.setdefault(st.release, []).append(
                {"id": st.id, "host": "127.0.0.1", "port": st.port, "ready": bool(st.ready)})
        return {
            "env": self.name,
            "port": self.port,
            # "old" (kept warm, no traffic) is our own label; the router knows stable/canary/preview.
            "pools": [{"release": rel, "role": _router_role(self.role(rel)), "instances": insts}
                      for rel, insts in pools.items()],
            "weights": {r: w for r, w in self.weights.items() if w > 0},
            "settings": self.router_settings,
            "sticky": self.sticky,
        }

    def forget_empty_releases(self) -> None:
        live = {s.release for s in self.instances()}
        for rel in list(self.roles):
            if rel not in live and self.weights.get(rel, 0) == 0:
                self.roles.pop(rel, None)
                self.weights.pop(rel, None)

    def save(self) -> None:
        self.store.upsert_environment(self.name, updated_at=self.clock.time(), routing={
            "port": self.port,
            "weights": self.weights,
            "unrouted": sorted(self.unrouted),
            "roles": self.roles,
            "launch": {rel: cfg.to_json() for rel, cfg in self.launch.items()},
            "settings": self.router_settings,
            "sticky": self.sticky,
        })

    def restore(self, routing: dict[str, Any] | None) -> None:
        if not routing:
            return
        self.port = routing.get("port")
        self.weights = {k: int(v) for k, v in (routing.get("weights") or {}).items()}
        self.unrouted = set(routing.get("unrouted") or [])
        self.roles = dict(routing.get("roles") or {})
        self.launch = {rel: Launch.from_json(cfg) for rel, cfg in (routing.get("launch") or {}).items()}
        self.router_settings = dict(routing.get("settings") or {})
        self.sticky = routing.get("sticky")

    def record_current(self, current: str | None, previous: str | None) -> None:
        self.store.upsert_environment(self.name, current_release=current, previous_release=previous,
                                      updated_at=self.clock.time())


def _router_role(role: str) -> str:
    return role if role in ROUTER_ROLES else "stable"
