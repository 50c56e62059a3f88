"""Coming back after a crash: re-adopt live instances and restore one consistent routing table.

Any deployment found running is marked interrupted. Per environment the serving release is the one
recorded as current; its live instances are adopted (never started twice), missing ones started,
instances of a half-deployed release stopped, and the previous release kept warm for a while.
"""

from __future__ import annotations

from shipyard.control.events import EventLog
from shipyard.control.supervisor import Supervisor
from shipyard.control.target import Targets
from shipyard.primitives import process
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

ADOPT_READY_S = 15.0
DEFAULT_SCALE_DOWN_S = 300.0


async def adopt(*, store: Store, targets: Targets, supervisor: Supervisor, events: EventLog, clock: Clock,
                spec: Spec | None) -> None:
    for dep in store.interrupt_running(clock.time()):
        events.add(dep.env, "interrupted", f"deployment {dep.id} ({dep.kind} of {dep.release}) was interrupted "
                   "by a control-plane restart")
    for env in store.list_environments():
        target = targets.get(env.name)
        rt = target.routing
        current, previous = env.current_release, env.previous_release
        adopted: list[str] = []
        strays: list[tuple[int, float, str]] = []
        for rec in store.list_instances(env.name):
            pid, ct = rec.pid or 0, rec.create_time or 0.0
            alive = pid > 0 and process.is_alive(pid, ct)
            if alive and rec.release in (current, previous) and rec.release in rt.launch:
                spec_i = target.instances.spec(env.name, rec.release, rec.index, rec.id, rec.port, rec.role,
                                               rt.launch[rec.release])
                if supervisor.adopt(spec_i, pid, ct):
                    adopted.append(rec.id)
                    continue
            if alive:
                strays.append((pid, ct, rec.id))
            store.delete_instance(rec.id)
        if current is None:
            continue
        # Ready again only after a passing probe; until then the router keeps its last table.
        statuses = [supervisor.status(i) for i in adopted]
        cur_ids = [st.id for st in statuses if st is not None and st.release == current]
        if cur_ids:
            await supervisor.wait_ready(cur_ids, ADOPT_READY_S)
        rt.weights = {current: 100}
        rt.roles = {current: "stable", **({previous: "old"} if previous and rt.ids_of(previous) else {})}
        rt.unrouted = set()
        await target.push()
        for pid, ct, iid in strays:
            events.add(env.name, "stray_stopped", f"stopped {iid}, left over from an interrupted deployment")
            await process.stop_process_group(pid, ct, sig="SIGTERM", grace=10.0, clock=clock)
        envspec = spec.environments.get(env.name) if spec is not None else None
        missing = (envspec.replicas if envspec else len(cur_ids)) - len(rt.ids_of(current))
        if missing > 0 and current in rt.launch:
            events.add(env.name, "restore", f"starting {missing} missing instance(s) of {current}")
            await target.start_instances(current, missing, "stable")
        if previous and rt.ids_of(previous):
            target.schedule_scale_down(previous, envspec.scale_down_delay if envspec else DEFAULT_SCALE_DOWN_S)
