"""The live side of each environment: its instances, its routing, and the local deploy target.

``EnvRuntime`` owns one environment's routing state (weights by release, instances taken out of
rotation) and turns the supervisor's view of the instances into the router's table. Every change is
pushed to the router and recorded in the state database, so a restarted control plane finds the
same picture. ``LocalTarget`` is the deploy executor's target on this machine.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as _secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.control.launch import Launch
from shipyard.control.supervisor import InstanceSpec, InstanceStatus
from shipyard.errors import BadInput, DeployFailed, ShipyardError
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.store.records import InstanceRec

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon

log = logging.getLogger("shipyard.control")


class EnvRuntime:
    def __init__(self, daemon: Daemon, name: str) -> None:
        self.d = daemon
        self.name = name
        self.port: int | None = None
        self.weights: dict[str, int] = {}
        self.unrouted: set[str] = set()
        self.roles: dict[str, str] = {}  # release -> stable | canary | preview | old
        self.launch: dict[str, Launch] = {}  # release -> how its instances run here
        self.router_settings: dict[str, Any] = {}
        self.sticky: dict[str, str] | None = None
        self.warm_tasks: dict[str, asyncio.Task[None]] = {}
        self._push_lock = asyncio.Lock()
        self._push_pending = False

    # -- routing ---------------------------------------------------------------------------------
    def instances(self) -> list[InstanceStatus]:
        return [s for s in self.d.supervisor.all(self.name) if s.state not in ("stopped",)]

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
            "pools": [{"release": rel, "role": _router_role(self.roles.get(rel, "stable")), "instances": insts}
                      for rel, insts in pools.items()],
            "weights": {r: w for r, w in self.weights.items() if w > 0},
            "settings": self.router_settings,
            "sticky": self.sticky,
        }

    async def push(self) -> None:
        """Send the current table to the router (coalescing bursts of changes)."""
        if self.port is None:
            return
        self._push_pending = True
        async with self._push_lock:
            if not self._push_pending:
                return
            self._push_pending = False
            table = self.table()
            reply = await self.d.router_call("set_table", table=table)
            if not reply.get("ok"):
                raise DeployFailed(f"router refused the table for {self.name}: {reply.get('error')}")
            self.save_routing()

    def save_routing(self) -> None:
        self.d.store.upsert_environment(self.name, updated_at=self.d.clock.time(), routing={
            "port": self.port,
            "weights": self.weights,
            "unrouted": sorted(self.unrouted),
            "roles": self.roles,
            "launch": {rel: cfg.to_json() for rel, cfg in self.launch.items()},
            "settings": self.router_settings,
            "sticky": self.sticky,
        })

    def restore_routing(self, routing: dict[str, Any] | None) -> None:
        if not routing:
            return
        self.port = routing.get("port")
        self.weights = {k: int(v) for k, v in (routing.get("weights") or {}).items()}
        self.unrouted = set(routing.get("unrouted") or [])
        self.roles = dict(routing.get("roles") or {})
        self.launch = {rel: Launch.from_json(cfg) for rel, cfg in (routing.get("launch") or {}).items()}
        self.router_settings = dict(routing.get("settings") or {})
        self.sticky = routing.get("sticky")

    # -- instances -------------------------------------------------------------------------------
    def instance_spec(self, release: str, index: int, iid: str, port: int, role: str) -> InstanceSpec:
        cfg = self.launch[release]
        env_vars = self.d.instance_env(self.name, cfg)
        return InstanceSpec(
            id=iid, env=self.name, release=release, index=index, cmd=cfg.run,
            cwd=self.d.release_dir(release), env_vars=env_vars, port=port,
            log_path=self.d.paths.instance_log(self.name, iid), stop_signal=cfg.stop_signal,
            stop_grace=cfg.stop_grace, health=cfg.health, ready=cfg.ready, role=role)

    async def start_instances(self, release: str, count: int, role: str) -> list[str]:
        if not self.d.release_dir(release).is_dir():
            raise DeployFailed(f"release {release} is not on disk (pruned?)")
        used = {s.index for s in self.instances() if s.release == release}
        ids: list[str] = []
        self.roles.setdefault(release, role)
        index = 0
        for _ in range(count):
            while index in used:
                index += 1
            used.add(index)
            iid = f"{self.name}-{release}-{index}-{_secrets.token_hex(2)}"
            spec = self.instance_spec(release, index, iid, free_port(), role)
            status = await self.d.supervisor.start(spec)
            self.d.record_instance(status, role)
            ids.append(iid)
        await self.push()
        return ids

    async def stop_instances(self, ids: list[str]) -> None:
        if not ids:
            return
        # Out of the table first so no new request can reach an instance that is going away.
        self.unrouted.update(ids)
        await self.push()
        await asyncio.gather(*(self.d.supervisor.stop(i) for i in ids))
        for i in ids:
            self.unrouted.discard(i)
            self.d.store.delete_instance(i)
        self._forget_empty_releases()
        await self.push()

    def _forget_empty_releases(self) -> None:
        live = {s.release for s in self.instances()}
        for rel in list(self.roles):
            if rel not in live and self.weights.get(rel, 0) == 0:
                self.roles.pop(rel, None)
                self.weights.pop(rel, None)

    def ids_of(self, release: str) -> list[str]:
        return [s.id for s in self.instances() if s.release == release]

    def ready_ids(self, release: str) -> list[str]:
        return [s.id for s in self.instances() if s.release == release and s.ready and s.id not in self.unrouted]

    def cancel_warm(self, release: str) -> None:
        task = self.warm_tasks.pop(release, None)
        if task:
            task.cancel()

    def schedule_scale_down(self, release: str, delay: float) -> None:
        self.cancel_warm(release)

        async def later() -> None:
            await self.d.clock.sleep(delay)
            if self.weights.get(release, 0) == 0 and release in self.roles:
                self.d.event(self.name, "scale_down", f"stopping warm release {release}")
                self.warm_tasks.pop(release, None)
                await self.stop_instances(self.ids_of(release))

        self.warm_tasks[release] = asyncio.create_task(later())
        self.d.store.add_event(self.name, "keep_warm", f"{release} kept warm for {format_duration(delay)}",
                               data={"release": release, "until": self.d.clock.time() + delay},
                               at=self.d.clock.time())


class LocalTarget:
    """The executor's target on this machine: supervisor for processes, router for traffic."""

    def __init__(self, rt: EnvRuntime, verify_fn: Any = None) -> None:
        self.rt = rt
        self.verify_fn = verify_fn

    async def start(self, release: str, count: int, role: str) -> list[str]:
        self.rt.cancel_warm(release)
        return await self.rt.start_instances(release, count, role)

    async def wait_ready(self, ids: list[str], timeout: float) -> None:
        # A crash loop fails the step after a few restarts instead of waiting out deploy_timeout.
        ok = await self.rt.d.supervisor.wait_ready(ids, timeout, max_restarts=3)
        if not ok:
            states = [self.rt.d.supervisor.status(i) for i in ids]
            bad = [s for s in states if s is None or not s.ready]
            detail = "; ".join(f"{s.id}: {s.state}" + (f" ({s.last_exit})" if s.last_exit else "")
                               for s in bad if s is not None)
            raise DeployFailed(f"{len(bad)} of {len(ids)} instance(s) not ready within "
                               f"{format_duration(timeout)}: {detail}")

    async def route(self, weights: dict[str, int], commit: dict[str, str | None] | None) -> None:
        rt = self.rt
        for rel in weights:
            if weights[rel] > 0 and not rt.ready_ids(rel):
                raise DeployFailed(f"refusing to route traffic to {rel}: no ready instance")
        rt.weights = {**{r: 0 for r in rt.weights}, **weights}
        for rel, w in weights.items():
            # A canary stays labelled canary until it takes all the traffic.
            if w > 0 and (w == 100 or rt.roles.get(rel) != "canary"):
                rt.roles[rel] = "stable"
        await rt.push()
        if commit:
            rt.d.store.upsert_environment(rt.name, current_release=commit.get("current"),
                                          previous_release=commit.get("previous"), updated_at=rt.d.clock.time())

    async def unroute(self, ids: list[str], weights: dict[str, int] | None) -> None:
        self.rt.unrouted.update(ids)
        if weights:
            self.rt.weights = {**{r: 0 for r in self.rt.weights}, **weights}
        await self.rt.push()

    async def drain(self, release: str | None, ids: list[str] | None, timeout: float) -> dict[str, Any]:
        rt = self.rt
        if release is not None:
            reply = await rt.d.router_call("drain", env=rt.name, release=release, timeout=timeout,
                                           _timeout=timeout + 10)
            return {"drained": bool(reply.get("drained", reply.get("ok"))), "inflight": reply.get("inflight", 0)}
        # Instances already out of rotation: wait until the router has no request in flight to them.
        deadline = rt.d.clock.monotonic() + timeout
        wanted = set(ids or [])
        while True:
            inflight = await rt.d.inflight(rt.name, wanted)
            if inflight == 0:
                return {"drained": True, "inflight": 0}
            if rt.d.clock.monotonic() >= deadline:
                return {"drained": False, "inflight": inflight}
            await rt.d.clock.sleep(0.05)

    async def stop(self, ids: list[str] | None, release: str | None) -> None:
        rt = self.rt
        if ids is None and release is not None:
            rt.cancel_warm(release)
            ids = rt.ids_of(release)
        await rt.stop_instances(list(ids or []))

    async def keep_warm(self, release: str, delay: float) -> None:
        self.rt.roles[release] = "old"
        await self.rt.push()
        if delay <= 0:
            await self.rt.stop_instances(self.rt.ids_of(release))
        else:
            self.rt.schedule_scale_down(release, delay)

    async def verify(self, release: str, preview: bool) -> dict[str, Any]:
        if self.verify_fn is None:
            raise BadInput("verify is enabled for this environment but load verification is not available")
        result: dict[str, Any] = await self.verify_fn(self.rt, release, preview)
        return result

    async def canary(self, params: dict[str, Any]) -> dict[str, Any]:
        from shipyard.control.canary import perform

        return await perform(self.rt.d, self.rt, params)

    async def recover(self, serving: str | None, started: list[str], committed: bool) -> None:
        rt = self.rt
        try:
            if serving and rt.ready_ids(serving):
                moved = any(w > 0 for r, w in rt.weights.items() if r != serving)
                rt.weights = {serving: 100}
                rt.roles[serving] = "stable"
                rt.unrouted.difference_update(rt.ids_of(serving))
                await rt.push()
                if committed:
                    rt.d.store.upsert_environment(rt.name, current_release=serving,
                                                  previous_release=None, updated_at=rt.d.clock.time())
                if moved and started:
                    # Traffic had reached the new instances: let their in-flight requests finish first.
                    rt.unrouted.update(started)
                    await rt.push()
                    await self.drain(None, started, timeout=10.0)
            await rt.stop_instances(started)
        except ShipyardError as err:
            rt.d.event(rt.name, "recover_failed", f"could not fully restore {serving}: {err}")


def release_path(state_dir: Path, release: str) -> Path:
    return state_dir / "releases" / release


def instance_rec(status: InstanceStatus, role: str, now: float) -> InstanceRec:
    return InstanceRec(id=status.id, env=status.env, release=status.release, index=status.index,
                       port=status.port, pid=status.pid or 0, create_time=status.create_time or 0.0,
                       role=role, state=status.state, started_at=status.started_at or now,
                       restarts=status.restarts)


def _router_role(role: str) -> str:
    return role if role in ("stable", "canary", "preview") else "stable"
