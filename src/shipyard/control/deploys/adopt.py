"""Coming back after a crash: re-adopt live instances and restore one consistent routing table.

Any deployment found running is marked interrupted. Per environment the serving release is the one
recorded as current; its live instances are adopted (never started twice), missing ones started,
instances of a half-deployed release stopped, and the previous release kept warm for a while.
"""

from __future__ import annotations

from shipyard.control.deploys.registry import Registry
from shipyard.control.events import EventLog
from shipyard.control.instancespec import InstanceStatus
from shipyard.control.supervisor import Supervisor
from shipyard.control.target import LocalTarget, Targets
from shipyard.errors import ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store
from shipyard.primitives.store.records import EnvironmentRec

ADOPT_READY_S = 15.0
DEFAULT_SCALE_DOWN_S = 300.0
DEFAULT_READY_S = 300.0


async def adopt(*, store: Store, targets: Targets, supervisor: Supervisor, events: EventLog, clock: Clock,
                spec: Spec | None) -> None:
    for dep in store.interrupt_running(clock.time()):
        events.add(dep.env, "interrupted", f"deployment {dep.id} ({dep.kind} of {dep.release}) was interrupted "
                   "by a control-plane restart")
    for env in store.list_environments():
        try:
            with targets.holding(env.name):
                await _adopt_env(env, store=store, targets=targets, supervisor=supervisor, events=events,
                                 clock=clock, spec=spec)
        except ShipyardError as err:
            # One environment that cannot come back must not keep the others (or the control plane) down.
            events.add(env.name, "restore_failed", f"could not bring {env.name} back: {err}")


async def _adopt_env(env: EnvironmentRec, *, store: Store, targets: Targets, supervisor: Supervisor,
                     events: EventLog, clock: Clock, spec: Spec | None) -> None:
    target = targets.get(env.name)
    rt = target.routing
    current, previous = env.current_release, env.previous_release
    adopted: list[str] = []
    strays: list[tuple[int, float, str]] = []
    for rec in store.list_instances(env.name):
        pid, ct = rec.pid or 0, rec.create_time or 0.0
        alive = pid > 0 and process.is_alive(pid, ct)
        # Workers (process types that are not routed) follow the serving release only.
        if alive and rec.release in (current, previous) and rec.release in rt.launch and (
                rec.process == "web" or rec.release == current and rec.process in rt.launch[current].processes):
            spec_i = target.instances.spec(env.name, rec.release, rec.index, rec.id, rec.port, rec.role,
                                           rt.launch[rec.release], rec.process)
            if supervisor.adopt(spec_i, pid, ct):
                adopted.append(rec.id)
                continue
        if alive:
            strays.append((pid, ct, rec.id))
        store.delete_instance(rec.id)
    if current is None:
        return
    envspec = spec.environments.get(env.name) if spec is not None else None
    cur_ids = [i for i in adopted if (st := supervisor.status(i)) is not None and st.release == current
               and st.process == "web"]
    missing = (envspec.replicas if envspec else max(len(cur_ids), 1)) - len(cur_ids)
    if missing > 0 and current in rt.launch:
        await _restart_serving(target, store, events, clock, current, previous, missing,
                               envspec.deploy_timeout if envspec else DEFAULT_READY_S, stopped=not cur_ids)
    elif cur_ids:
        # Ready again only after a passing probe; until then the router keeps its last table.
        await supervisor.wait_ready(cur_ids, ADOPT_READY_S)
    if current in rt.launch:
        await _restart_workers(target, current, [s for s in (supervisor.status(i) for i in adopted) if s])
    rt.weights = {current: 100}
    rt.roles = {current: "stable", **({previous: "old"} if previous and rt.ids_of(previous) else {})}
    rt.unrouted = set()
    await target.push()
    for pid, ct, iid in strays:
        events.add(env.name, "stray_stopped", f"stopped {iid}, left over from an interrupted deployment")
        await process.stop_process_group(pid, ct, sig="SIGTERM", grace=10.0, clock=clock)
    if previous and rt.ids_of(previous):
        target.schedule_scale_down(previous, envspec.scale_down_delay if envspec else DEFAULT_SCALE_DOWN_S)


async def _restart_workers(target: LocalTarget, current: str, adopted: list[InstanceStatus]) -> None:
    """Start what is missing of the serving release's other process types (not waited for: only web is
    routed, and a worker that cannot start is restarted with backoff like any instance)."""
    for name, proc in target.routing.launch[current].processes.items():
        running = sum(1 for s in adopted if s.release == current and s.process == name)
        if proc.replicas > running:
            await target.start_instances(current, proc.replicas - running, "stable", name)


async def _restart_serving(target: LocalTarget, store: Store, events: EventLog, clock: Clock, current: str,
                           previous: str | None, missing: int, timeout: float, *, stopped: bool) -> None:
    """Start what is missing of the serving release — all of it after ``shipyard down`` or a reboot — and
    record it in the environment's history as a ``restore``."""
    env, rt = target.env, target.routing
    why = ("nothing of it was running (after `shipyard down` or a reboot)" if stopped
           else f"{missing} instance(s) were gone")
    events.add(env, "restore", f"starting {missing} instance(s) of {current}: {why}")
    dep = store.begin_deployment(env, kind="restore", release=current, previous_release=previous,
                                 strategy="restore", plan=[], started_at=clock.time())
    outcome, reason = "failed", None
    try:
        # Routing only to releases that have instances: the saved weights may name a pool that is gone.
        rt.weights = {r: w for r, w in rt.weights.items() if rt.ids_of(r)}
        await target.start_instances(current, missing, "stable")
        await target.wait_ready(rt.ready_candidates(current), timeout)
        outcome, reason = "succeeded", f"control plane restarted: {current} serves again ({why})"
    except ShipyardError as err:
        reason = f"could not restart {current}: {err}"
        raise
    finally:
        store.finish_deployment(dep.id, outcome=outcome, reason=reason, finished_at=clock.time())


async def router_restarted(why: str, *, store: Store, targets: Targets, registry: Registry, events: EventLog,
                           clock: Clock) -> None:
    """The router died and was started again, empty: send every environment's table, and say so in each
    environment's history (as a ``restore``, unless a deployment holds it; then as an event)."""
    for target in targets.known():
        if target.routing.port is None:
            continue
        env = target.env
        reason = f"{why}; started again and its routing table re-sent"
        try:
            await target.push()
        except ShipyardError as err:
            reason = f"{why}; started again, but the table was refused: {err}"
        events.add(env, "router_restarted", reason)
        rec = store.get_environment(env)
        if rec is None or rec.current_release is None or registry.is_busy(env):
            continue
        dep = store.begin_deployment(env, kind="restore", release=rec.current_release,
                                     previous_release=rec.previous_release, strategy="restore", plan=[],
                                     started_at=clock.time())
        store.finish_deployment(dep.id, outcome="succeeded", reason=reason, finished_at=clock.time())
