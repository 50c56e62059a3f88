"""Fakes for unit tests of the control plane's wiring: a supervisor that "runs" instances in memory and a
router link that records tables. The state database is the real one (SQLite in a temp dir)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.service import DeployService
from shipyard.control.events import EventLog
from shipyard.control.instances import InstanceFactory
from shipyard.control.paths import Paths
from shipyard.control.releases import ReleaseService
from shipyard.control.specsource import SpecSource
from shipyard.control.supervisor import InstanceSpec, InstanceStatus
from shipyard.control.target import Targets
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.routerproto import RouterError, RoutingTable
from shipyard.primitives.spec import Spec, parse_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store
from shipyard.primitives.store.records import ReleaseRec

SPEC: dict[str, Any] = {
    "app": {"name": "svc", "run": "python3 app.py", "health": {"path": "/health"}},
    "defaults": {"replicas": 2, "strategy": "blue-green", "scale_down_delay": "5m"},
    "environments": {"staging": {"port": 18200}},
}


def make_spec(project: Path, **env: Any) -> Spec:
    data = {**SPEC, "environments": {"staging": {**SPEC["environments"]["staging"], **env}}}
    return parse_spec(data, project / "shipyard.toml")


class FakeSupervisor:
    """Instances become ready as soon as they start (``ready_on_start``), or never."""

    def __init__(self, ready_on_start: bool = True) -> None:
        self.ready_on_start = ready_on_start
        self.instances: dict[str, InstanceStatus] = {}
        self.adopted: list[str] = []
        self.on_change: Callable[[InstanceStatus], None] = lambda st: None

    def _status(self, spec: InstanceSpec, ready: bool, pid: int = 0, ct: float = 0.0) -> InstanceStatus:
        return InstanceStatus(id=spec.id, env=spec.env, release=spec.release, index=spec.index, port=spec.port,
                              pid=pid, create_time=ct, state="ready" if ready else "starting", ready=ready,
                              restarts=0, started_at=0.0, role=spec.role)

    async def start(self, spec: InstanceSpec) -> InstanceStatus:
        st = self.instances[spec.id] = self._status(spec, self.ready_on_start)
        return st

    def adopt(self, spec: InstanceSpec, pid: int, create_time: float) -> bool:
        # Like the real one: adopted means watched, not ready until a probe passes (here: at wait_ready).
        st = self.instances[spec.id] = self._status(spec, False, pid, create_time)
        self.adopted.append(spec.id)
        self.on_change(st)
        return True

    async def stop(self, id: str, grace: float | None = None) -> None:
        self.instances.pop(id, None)

    def status(self, id: str) -> InstanceStatus | None:
        return self.instances.get(id)

    def all(self, env: str | None = None) -> list[InstanceStatus]:
        return [s for s in self.instances.values() if env is None or s.env == env]

    async def wait_ready(self, ids: Iterable[str], timeout: float, *, max_restarts: int | None = None) -> bool:
        for i in ids:  # the first probe passes now
            if i in self.instances and i in self.adopted and not self.instances[i].ready:
                self.set_ready(i, True)
        return all((s := self.instances.get(i)) is not None and s.ready for i in ids)

    def set_ready(self, id: str, ready: bool) -> None:
        st = self.instances[id] = replace(self.instances[id], ready=ready, state="ready" if ready else "unready")
        self.on_change(st)


class FakeLink:
    """Records every table pushed; ``stats`` answers ``inflight`` or raises ``stats_error``."""

    def __init__(self) -> None:
        self.tables: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.inflight_now = 0
        self.stats_error: str | None = None

    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        self.calls.append((op, fields))
        if op == "drain":
            return {"drained": True, "inflight": 0}
        return {}

    async def inflight(self, env: str, ids: Iterable[str]) -> int:
        if self.stats_error is not None:
            raise RouterError(self.stats_error)
        return self.inflight_now

    async def push(self, env: str, table: Callable[[], RoutingTable]) -> None:
        self.tables.append(table().to_wire())

    def push_soon(self, env: str, table: Callable[[], RoutingTable]) -> None:
        self.tables.append(table().to_wire())

    def check_port(self, env: str, port: int, ours: bool) -> None:
        pass


class Plane:
    """The control plane's collaborators, built the way ``ControlPlane`` builds them, with the fakes."""

    def __init__(self, project: Path, supervisor: FakeSupervisor | None = None) -> None:
        project.mkdir(parents=True, exist_ok=True)
        (project / "shipyard.toml").write_text("# the tests hand specs in directly\n")
        self.paths = Paths(project)
        self.paths.ensure()
        self.clock = ManualClock()
        self.store = open_store(None, self.paths.state)
        self.secrets = SecretStore(self.paths.state)
        self.events = EventLog(self.store, self.clock)
        self.link = FakeLink()
        self.supervisor = supervisor or FakeSupervisor()
        sup: Any = self.supervisor
        link: Any = self.link
        self.targets = Targets(supervisor=sup, link=link, instances=InstanceFactory(self.paths, self.secrets),
                               store=self.store, events=self.events, clock=self.clock)
        self.supervisor.on_change = self.targets.on_instance_change
        self.releases = ReleaseService(self.paths, self.store, self.clock)
        self.registry = Registry()
        self.deploys = DeployService(specs=SpecSource(project), paths=self.paths, store=self.store,
                                     secrets=self.secrets, clock=self.clock, events=self.events,
                                     targets=self.targets, releases=self.releases, registry=self.registry)

    def add_release(self, rid: str, sha: str = "a" * 40) -> None:
        self.paths.release_dir(rid).mkdir(parents=True)
        self.store.add_release(ReleaseRec(id=rid, commit=sha, ref="HEAD", message=f"release {rid}", author="t",
                                          created_at=self.clock.time(), build_duration_s=0.1,
                                          content_hash="sha256:0", spec={}, secrets_version=0, build_log="",
                                          status="ready"))

    def close(self) -> None:
        self.store.close()


def alive_pid() -> tuple[int, float]:
    """A pid that is alive for sure (this test process) with its start time."""
    return os.getpid(), psutil.Process().create_time()
