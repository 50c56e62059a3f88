"""The local deploy target: instances are processes under the supervisor, traffic is the router's table.

``LocalTarget`` implements ``engine.rollout.target.DeployTarget`` for one environment and lives as long
as the control plane (it owns the environment's warm-release timers and its shared collector).
``Targets`` hands out one per environment and turns the supervisor's status changes into table pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets as _secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence

from shipyard.control import logfiles
from shipyard.control.collector import Collector
from shipyard.control.events import EventLog
from shipyard.control.instances import InstanceFactory, instance_rec
from shipyard.control.instancespec import InstanceStatus
from shipyard.control.routerlink import RouterLink
from shipyard.control.runtime import EnvRouting
from shipyard.control.supervisor import Supervisor
from shipyard.control.tasks import guarded
from shipyard.engine.rollout.launch import Launch
from shipyard.engine.rollout.plan import RouterPlan
from shipyard.engine.rollout.steps import RoutingCommit
from shipyard.engine.rollout.target import DrainResult, MetricSource
from shipyard.errors import BadInput, DeployFailed, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.routerproto import RouterError, TableError
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.store import Store

RECOVER_DRAIN_S = 10.0
RESTARTS_BEFORE_GIVING_UP = 3
TAIL_LINES = 8  # of a crashed instance's output, in the failure's reason  # how long a rolled-back release's in-flight requests get before it is stopped


class LocalTarget:
    def __init__(self, routing: EnvRouting, *, supervisor: Supervisor, link: RouterLink, instances: InstanceFactory,
                 store: Store, events: EventLog, clock: Clock) -> None:
        self.routing = routing
        self.env = routing.name
        self.supervisor = supervisor
        self.link = link
        self.instances = instances
        self.store = store
        self.events = events
        self.clock = clock
        self.warm_tasks: dict[str, asyncio.Task[None]] = {}
        self._pending: RouterPlan | None = None
        self._collector: Collector | None = None
        self._observers = 0

    # -- configuration and pushes ------------------------------------------------------------------
    def configure(self, router: RouterPlan, release: str, launch: Launch) -> None:
        """A deployment's router settings and launch; applied with its first change of the table."""
        self._pending = router
        self.routing.launch[release] = launch

    def _apply_pending(self) -> None:
        if self._pending is not None:
            rt, p = self.routing, self._pending
            rt.port, rt.router_settings, rt.sticky = p.port, p.settings, p.sticky
            self._pending = None

    async def push(self) -> None:
        if self.routing.port is None:
            return
        try:
            await self.link.push(self.env, self.routing.table)
        except TableError as err:
            raise DeployFailed(f"cannot build the routing table for {self.env}: {err}") from err
        except RouterError as err:
            if "in use" in str(err):
                raise BadInput(f"cannot serve {self.env} on port {self.routing.port}: {err}") from err
            raise DeployFailed(f"router refused the table for {self.env}: {err}") from err
        self.routing.save()

    def record(self, status: InstanceStatus) -> None:
        self.store.upsert_instance(instance_rec(status, self.routing.role(status.release), self.clock.time()))

    # -- DeployTarget ------------------------------------------------------------------------------
    async def start(self, release: str, count: int, role: str, *, process: str = "web") -> list[str]:
        self.cancel_warm(release)
        self._apply_pending()
        # The router must be able to listen on the environment's port before anything starts.
        await self.push()
        return await self.start_instances(release, count, role, process)

    async def start_instances(self, release: str, count: int, role: str, process: str = "web") -> list[str]:
        rt = self.routing
        if not self.instances.paths.release_dir(release).is_dir():
            raise DeployFailed(f"release {release} is not on disk (pruned?)")
        launch = rt.launch[release]
        await self.instances.prepare(self.env, release)  # its work dir, off the event loop
        used = {s.index for s in rt.instances() if s.release == release and s.process == process}
        if process == "web":
            rt.roles.setdefault(release, role)
        ids: list[str] = []
        index = 0
        for _ in range(count):
            while index in used:
                index += 1
            used.add(index)
            kind = "" if process == "web" else f"{process}-"
            iid = f"{self.env}-{release}-{kind}{index}-{_secrets.token_hex(2)}"
            status = await self.supervisor.start(
                self.instances.spec(self.env, release, index, iid, free_port(), role, launch, process))
            self.record(status)
            ids.append(iid)
        await self.push()
        return ids

    async def wait_ready(self, ids: Sequence[str], timeout: float) -> None:
        # A crash loop fails the step after a few restarts instead of waiting out deploy_timeout.
        t0 = self.clock.monotonic()
        ok = await self.supervisor.wait_ready(ids, timeout, max_restarts=RESTARTS_BEFORE_GIVING_UP)
        if ok:
            return
        took = self.clock.monotonic() - t0
        statuses = [self.supervisor.status(i) for i in ids]
        bad = [s for s in statuses if s is not None and not s.ready]
        when = (f"within {format_duration(timeout)}" if took >= timeout - 0.5 else
                f"(gave up after {format_duration(took)}: restarted {RESTARTS_BEFORE_GIVING_UP}× without becoming ready)")
        lines = [f"{len(bad) or len(ids)} of {len(ids)} instance(s) not ready {when}:"]
        for s in bad:
            lines += self._why_not_ready(s)
        raise DeployFailed("\n".join(lines))

    def _why_not_ready(self, s: InstanceStatus) -> list[str]:
        """The cause in a line (the probe's answers, the exit code) and, for an exit, the output's last lines."""
        if s.restart_cause == "unhealthy" and s.health_errors:
            counts = Counter(s.health_errors)
            seen = ", ".join(f"{what} ×{n}" for what, n in counts.most_common())
            return [f"{s.id}: failed {len(s.health_errors)} health checks in a row ({seen}, restarted {s.restarts}×)"]
        if s.restart_cause == "exited":
            tail = [line for line in logfiles.tail(self.instances.paths.instance_log(self.env, s.id), 200)
                    if line.strip()][-TAIL_LINES:]
            out = [f"{s.id}: {s.last_exit} (restarted {s.restarts}×)" + ("; its last output:" if tail else "")]
            return out + [f"    {line}" for line in tail]
        probe = f"; last probe: {s.probe_error}" if s.probe_error else ""
        return [f"{s.id}: {s.state}{probe}"]

    async def set_weights(self, weights: Mapping[str, int], commit: RoutingCommit | None) -> None:
        rt = self.routing
        self._apply_pending()
        for rel, w in weights.items():
            if w > 0 and not rt.ready_ids(rel):
                raise DeployFailed(f"refusing to route traffic to {rel}: no ready instance")
        rt.weights = {**{r: 0 for r in rt.weights}, **weights}
        for rel, w in weights.items():
            # A canary stays labelled canary until it takes all the traffic.
            if w > 0 and (w == 100 or rt.roles.get(rel) != "canary"):
                rt.roles[rel] = "stable"
        await self.push()
        if commit is not None:
            rt.record_current(commit.current, commit.previous)

    async def unroute(self, ids: Sequence[str], weights: Mapping[str, int] | None) -> None:
        self.routing.unrouted.update(ids)
        if weights:
            self.routing.weights = {**{r: 0 for r in self.routing.weights}, **weights}
        await self.push()

    async def drain(self, release: str | None, ids: Sequence[str] | None, timeout: float) -> DrainResult:
        if release is not None:
            reply = await self.link.call("drain", timeout + 10, env=self.env, release=release, timeout=timeout)
            return DrainResult(bool(reply.get("drained", True)), int(reply.get("inflight", 0)))
        # Instances already out of rotation: wait until the router has no request in flight to them.
        deadline = self.clock.monotonic() + timeout
        inflight, unknown = 0, None
        while True:
            try:
                inflight, unknown = await self.link.inflight(self.env, ids or ()), None
                if inflight == 0:
                    return DrainResult(True, 0)
            except RouterError as err:
                # Not knowing is not "nothing in flight": keep waiting, up to the timeout.
                unknown = f"the router could not say what is in flight: {err}"
            if self.clock.monotonic() >= deadline:
                return DrainResult(False, inflight, unknown)
            await self.clock.sleep(0.05)

    async def stop(self, ids: Sequence[str] | None, release: str | None) -> None:
        if ids is None and release is not None:
            self.cancel_warm(release)
            ids = self.routing.ids_of(release)
        await self.stop_instances(list(ids or []))

    async def stop_instances(self, ids: list[str]) -> None:
        if not ids:
            return
        rt = self.routing
        # Out of the table first so no new request can reach an instance that is going away.
        rt.unrouted.update(ids)
        await self.push()
        await asyncio.gather(*(self.supervisor.stop(i) for i in ids))
        for i in ids:
            rt.unrouted.discard(i)
            self.store.delete_instance(i)
        rt.forget_empty_releases()
        await self.push()

    async def keep_warm(self, release: str, delay: float) -> None:
        self.routing.roles[release] = "old"
        await self.push()
        if delay <= 0:
            await self.stop_instances(self.routing.ids_of(release))
        else:
            self.schedule_scale_down(release, delay)

    async def recover(self, serving: str | None, started: Sequence[str], committed: bool) -> None:
        rt = self.routing
        try:
            if serving and rt.ready_ids(serving):
                moved = any(w > 0 for r, w in rt.weights.items() if r != serving)
                rt.weights = {serving: 100}
                rt.roles[serving] = "stable"
                rt.unrouted.difference_update(rt.ids_of(serving))
                await self.push()
                if committed:
                    rt.record_current(serving, None)
                if moved and started:
                    # Traffic had reached the new instances: let their in-flight requests finish first.
                    rt.unrouted.update(started)
                    await self.push()
                    await self.drain(None, started, timeout=RECOVER_DRAIN_S)
            await self.stop_instances(list(started))
        except ShipyardError as err:
            self.events.add(self.env, "recover_failed", f"could not fully restore {serving}: {err}")

    @contextlib.asynccontextmanager
    async def observe(self) -> AsyncIterator[MetricSource]:
        """The environment's collector, shared by a canary and a watch, stopped when the last one ends."""
        if self._collector is None:
            self._collector = Collector(self.link, self.supervisor, self.clock, self.env)
        col = self._collector
        self._observers += 1
        col.start()
        try:
            yield col
        finally:
            self._observers -= 1
            if self._observers == 0:
                await col.stop()
                self._collector = None

    def endpoint(self, release: str, preview: bool) -> str:
        if not preview:
            return f"http://127.0.0.1:{self.routing.port}"
        # Before the switch the new release has no traffic share: load one of its instances directly.
        ready = self.routing.ready_ids(release)
        st = self.supervisor.status(ready[0]) if ready else None
        if st is None:
            raise DeployFailed(f"no ready instance of {release} to verify")
        return f"http://127.0.0.1:{st.port}"

    # -- warm releases -----------------------------------------------------------------------------
    def cancel_warm(self, release: str) -> None:
        task = self.warm_tasks.pop(release, None)
        if task:
            task.cancel()

    def schedule_scale_down(self, release: str, delay: float) -> None:
        self.cancel_warm(release)

        async def later() -> None:
            await self.clock.sleep(delay)
            if self.routing.weights.get(release, 0) == 0 and release in self.routing.roles:
                self.events.add(self.env, "scale_down", f"stopping warm release {release}")
                self.warm_tasks.pop(release, None)
                await self.stop_instances(self.routing.ids_of(release))

        self.warm_tasks[release] = guarded(later(), f"scale-down-{self.env}-{release}")
        self.events.add(self.env, "keep_warm", f"{release} kept warm for {format_duration(delay)}",
                        data={"release": release, "until": self.clock.time() + delay})

    def close(self) -> None:
        for task in list(self.warm_tasks.values()):
            task.cancel()


class Targets:
    """One ``LocalTarget`` per environment, its routing restored from the state database."""

    def __init__(self, *, supervisor: Supervisor, link: RouterLink, instances: InstanceFactory, store: Store,
                 events: EventLog, clock: Clock) -> None:
        self.supervisor, self.link, self.instances = supervisor, link, instances
        self.store, self.events, self.clock = store, events, clock
        self._targets: dict[str, LocalTarget] = {}
        self._held: set[str] = set()

    @contextlib.contextmanager
    def holding(self, env: str) -> Iterator[None]:
        """No table pushes from status changes while the block runs: re-adopted instances are "not ready"
        until their first probe passes, and the router's last table (all of them ready) must keep serving."""
        self._held.add(env)
        try:
            yield
        finally:
            self._held.discard(env)

    def get(self, env: str) -> LocalTarget:
        target = self._targets.get(env)
        if target is None:
            routing = EnvRouting(env, self.supervisor, self.store, self.clock)
            rec = self.store.get_environment(env)
            if rec is not None:
                routing.restore(rec.routing)
            target = self._targets[env] = LocalTarget(
                routing, supervisor=self.supervisor, link=self.link, instances=self.instances, store=self.store,
                events=self.events, clock=self.clock)
        return target

    def known(self) -> list[LocalTarget]:
        return list(self._targets.values())

    def on_instance_change(self, status: InstanceStatus) -> None:
        """The supervisor's callback: record the instance, and let readiness flips reach the router."""
        if status.state == "stopped":
            return
        target = self._targets.get(status.env)
        if target is None:
            return
        target.record(status)
        if target.routing.port is not None and status.env not in self._held:
            self.link.push_soon(status.env, target.routing.table)

    def serving_releases(self) -> set[str]:
        return {s.release for t in self._targets.values() for s in t.routing.instances()}

    def close(self) -> None:
        for t in self._targets.values():
            t.close()
