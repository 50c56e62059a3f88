"""The post-deploy watch: after a deployment succeeds the rollback triggers keep running on the new
release for ``watch`` (1h by default); one firing rolls back to the previous release (a router switch
while it is still warm, within ``scale_down_delay``) and says why in history and the events.

A new deploy or a manual rollback ends the watch (the release it watched is no longer the one serving).
The decision is pure (``engine.analysis.watch.decide_watch``); this module feeds it once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.control.triggers import Triggers
from shipyard.engine.analysis.conditions import conditions_from_spec
from shipyard.engine.analysis.watch import decide_watch
from shipyard.errors import ShipyardError
from shipyard.primitives.spec.durations import format_duration

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon

log = logging.getLogger("shipyard.control")


@dataclass
class Watch:
    env: str
    release: str
    previous: str
    watch_s: float
    started_at: float
    state: str = "watching"  # watching | rolling_back | done
    reason: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"release": self.release, "previous": self.previous, "state": self.state,
                "until": self.started_at + self.watch_s, "reason": self.reason}


def start_watch(d: Daemon, env: str, release: str, previous: str | None, envspec: Any) -> Watch | None:
    """Watch ``release`` if the environment has rollback triggers, a watch time and something to go back to."""
    stop_watch(d, env)
    triggers = conditions_from_spec(envspec.rollback)
    if not triggers or envspec.watch <= 0 or not previous or previous == release:
        return None
    w = Watch(env, release, previous, float(envspec.watch), d.clock.time())
    w.task = asyncio.get_running_loop().create_task(_run(d, w, Triggers(triggers, d.clock)), name=f"watch-{env}")
    d.watches[env] = w
    d.event(env, "watch", f"watching {release} for {format_duration(w.watch_s)}: a rollback trigger firing "
            f"rolls back to {previous}")
    return w


def stop_watch(d: Daemon, env: str) -> None:
    w = d.watches.pop(env, None)
    if w is not None and w.task is not None and w.task is not asyncio.current_task():
        w.task.cancel()


async def _run(d: Daemon, w: Watch, triggers: Triggers) -> None:
    from shipyard.control.collector import collecting

    clock = d.clock
    since = int(w.started_at)
    t0 = clock.monotonic()
    try:
        async with collecting(d, w.env) as col:
            while True:
                await col.next_tick(timeout=3.0)
                firing = [e for e in triggers.evaluate(col, w.release, since) if e.firing]
                decision = decide_watch(elapsed=clock.monotonic() - t0, watch=w.watch_s, firing=firing)
                w.reason = decision.reason
                if decision.action == "done":
                    w.state = "done"
                    d.event(w.env, "watch", f"{w.release}: {decision.reason}")
                    break
                if decision.action == "rollback":
                    w.state = "rolling_back"
                    await _rollback(d, w, decision.reason, [e.to_json() for e in decision.firing])
                    break
    except asyncio.CancelledError:
        raise
    except Exception:  # the watch must never take the control plane down
        log.exception("watch of %s crashed", w.env)
    finally:
        triggers.cancel()
        if d.watches.get(w.env) is w:
            d.watches.pop(w.env, None)


async def _rollback(d: Daemon, w: Watch, reason: str, firing: list[dict[str, Any]]) -> None:
    from shipyard.control import deployer

    d.event(w.env, "watch_rollback", f"rolling back {w.release} to {w.previous}: {reason}",
            data={"firing": firing})
    if w.env in d.busy:
        d.event(w.env, "watch_rollback", "a deployment is already running; the automatic rollback is skipped")
        return
    try:
        prep = deployer.prepare_rollback(d, w.env, to=w.previous)
    except ShipyardError as err:
        d.event(w.env, "watch_rollback", f"automatic rollback impossible: {err}")
        return
    prep.note = f"automatic rollback by the post-deploy watch: {reason}"
    prep.trigger = {"watch": {"release": w.release, "firing": firing}}
    task = asyncio.current_task()
    assert task is not None
    d.busy[w.env] = task
    try:
        with contextlib.suppress(ShipyardError):
            await deployer.run(d, prep, lambda ev: None)
    finally:
        d.busy.pop(w.env, None)
