"""One environment's routing state: the port, weights by release, instances out of rotation, roles,
how each release is launched here, and the router settings — and the routing table built from it.

``EnvRouting`` holds state only; the target changes it and pushes its ``table()`` through the router
link. Every change is saved in the state database, so a restarted control plane finds the same picture.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shipyard.control.instancespec import InstanceStatus
from shipyard.control.supervisor import Supervisor
from shipyard.engine.rollout.launch import Launch
from shipyard.primitives.clock import Clock
from shipyard.primitives.routerproto import ReleasePool, Role, RoutedInstance, RoutingTable
from shipyard.primitives.spec.router import RouterEnvSpec, StickySpec
from shipyard.primitives.store import Store


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
        self.router_settings = RouterEnvSpec()
        self.sticky: StickySpec | None = None

    def instances(self) -> list[InstanceStatus]:
        return [s for s in self.supervisor.all(self.name) if s.state != "stopped"]

    def ids_of(self, release: str) -> list[str]:
        return [s.id for s in self.instances() if s.release == release]

    def ready_candidates(self, release: str) -> list[str]:
        """Its web instances, ready or not."""
        return [s.id for s in self.instances() if s.release == release and s.process == "web"]

    def ready_ids(self, release: str) -> list[str]:
        """Its routed (web) instances that are ready and in rotation."""
        return [s.id for s in self.instances() if s.release == release and s.ready and s.id not in self.unrouted
                and s.process == "web"]

    def role(self, release: str) -> str:
        return self.roles.get(release, "stable")

    def table(self) -> RoutingTable:
        """The router's table (raises ``TableError`` for a state the router could not apply)."""
        assert self.port is not None, "an environment without a port has no table"
        pools: dict[str, list[RoutedInstance]] = {}
        for st in self.instances():
            if st.id not in self.unrouted and st.process == "web":  # only web is routed
                pools.setdefault(st.release, []).append(RoutedInstance(id=st.id, port=st.port, ready=bool(st.ready)))
        return RoutingTable(
            env=self.name, port=self.port,
            # "old" (kept warm, no traffic) is our own label; the router knows stable/canary/preview.
            pools=tuple(ReleasePool(release=rel, role=_router_role(self.role(rel)), instances=tuple(insts))
                        for rel, insts in pools.items()),
            weights={r: w for r, w in self.weights.items() if w > 0},
            sticky=self.sticky, settings=self.router_settings)

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
            "settings": self.router_settings.model_dump(mode="json"),
            "sticky": self.sticky.model_dump(mode="json") if self.sticky is not None else None,
        })

    def restore(self, routing: dict[str, Any] | None) -> None:
        if not routing:
            return
        self.port = routing.get("port")
        self.weights = {k: int(v) for k, v in (routing.get("weights") or {}).items()}
        self.unrouted = set(routing.get("unrouted") or [])
        self.roles = dict(routing.get("roles") or {})
        self.launch = {rel: Launch.from_json(cfg) for rel, cfg in (routing.get("launch") or {}).items()}
        try:
            self.router_settings = RouterEnvSpec.model_validate(routing.get("settings") or {})
            sticky = routing.get("sticky")
            self.sticky = StickySpec.model_validate(sticky) if sticky else None
        except ValidationError:
            # Saved by another version: the next deployment's settings replace these defaults.
            self.router_settings, self.sticky = RouterEnvSpec(), None

    def record_current(self, current: str | None, previous: str | None) -> None:
        self.store.upsert_environment(self.name, current_release=current, previous_release=previous,
                                      updated_at=self.clock.time())


def _router_role(role: str) -> Role:
    if role == "canary":
        return "canary"
    return "preview" if role == "preview" else "stable"
