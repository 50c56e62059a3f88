"""Coming back after a crash: re-adopt live instances and restore one consistent routing table.

Any deployment found running is marked interrupted. Per environment the serving release is the one
recorded as current; its live instances are adopted (never started twice), missing ones started,
instances of a half-deployed release stopped, and the previous release kept warm for a while.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shipyard.errors import ShipyardError
from shipyard.primitives import process

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon

log = logging.getLogger("shipyard.control")


async def adopt(d: Daemon) -> None:
    now = d.clock.time()
    for dep in d.store.interrupt_running(now):
        d.event(dep.env, "interrupted", f"deployment {dep.id} ({dep.kind} of {dep.release}) was interrupted "
                "by a control-plane restart")
    try:
        spec = d.load_spec()
    except ShipyardError as err:
        log.warning("cannot read the spec while re-adopting: %s", err)
        spec = None
    for env in d.store.list_environments():
        rt = d.runtime(env.name)
        current, previous = env.current_release, env.previous_release
        adopted: list[str] = []
        strays: list[tuple[int, float, str]] = []
        for rec in d.store.list_instances(env.name):
            pid, ct = rec.pid or 0, rec.create_time or 0.0
            alive = pid > 0 and process.is_alive(pid, ct)
            keep = rec.release in (current, previous) and rec.release in rt.launch
            if alive and keep:
                spec_i = rt.instance_spec(rec.release, rec.index, rec.id, rec.port, rec.role)
                if d.supervisor.adopt(spec_i, pid, ct):
                    adopted.append(rec.id)
                    continue
            if alive:
                strays.append((pid, ct, rec.id))
            d.store.delete_instance(rec.id)
        if current is None:
            continue
        # Ready again only after a passing probe; until then the router keeps its last table.
        statuses = [d.supervisor.status(i) for i in adopted]
        cur_ids = [st.id for st in statuses if st is not None and st.release == current]
        if cur_ids:
            await d.supervisor.wait_ready(cur_ids, 15.0)
        rt.weights = {current: 100}
        rt.roles = {current: "stable", **({previous: "old"} if previous and rt.ids_of(previous) else {})}
        rt.unrouted = set()
        await rt.push()
        for pid, ct, iid in strays:
            d.event(env.name, "stray_stopped", f"stopped {iid}, left over from an interrupted deployment")
            await process.stop_process_group(pid, ct, sig="SIGTERM", grace=10.0, clock=d.clock)
        replicas = None
        if spec is not None and env.name in spec.environments:
            replicas = spec.env(env.name).replicas
        missing = (replicas or len(cur_ids)) - len(rt.ids_of(current))
        if missing > 0 and current in rt.launch:
            d.event(env.name, "restore", f"starting {missing} missing instance(s) of {current}")
            await rt.start_instances(current, missing, "stable")
        if previous and rt.ids_of(previous):
            delay = spec.env(env.name).scale_down_delay if spec is not None and env.name in spec.environments else 300.0
            rt.schedule_scale_down(previous, delay)
