"""The post-deploy watch: after a deployment succeeds the rollback triggers keep running on the new
release for ``watch`` (1h by default); one firing rolls back to the previous release (a router switch
while it is still warm, within ``scale_down_delay``) and says why in history and the events.

A new deploy or a manual rollback ends the watch (the release it watched is no longer the one serving).
The decision is pure (``engine.analysis.watch.decide_watch``); this module feeds it once a second.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shipyard.control.deploys.registry import Registry, Watch
from shipyard.control.events import EventLog
from shipyard.control.target import Targets
from shipyard.control.tasks import guarded
from shipyard.engine.analysis.watch import decide_watch
from shipyard.engine.rollout.plan import Plan
from shipyard.engine.rollout.triggers import Triggers
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.durations import format_duration

# (env, to release, note, trigger) → runs a rollback deployment
Rollback = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]


class WatchService:
    def __init__(self, *, registry: Registry, targets: Targets, events: EventLog, clock: Clock,
                 rollback: Rollback) -> None:
        self.registry, self.targets, self.events, self.clock = registry, targets, events, clock
        self.rollback = rollback

    def start(self, plan: Plan) -> dict[str, Any] | None:
        """Watch the plan's release with its triggers (``plan.watches`` says whether there is a watch)."""
        self.stop(plan.env)
        if not plan.watches or plan.previous is None:
            return None
        w = Watch(plan.env, plan.release, plan.previous, plan.watch_s, self.clock.time())
        w.task = guarded(self._run(w, Triggers(plan.triggers, self.clock)), f"watch-{plan.env}")
        self.registry.set_watch(w)
        self.events.add(plan.env, "watch", f"watching {w.release} for {format_duration(w.watch_s)}: a rollback "
                        f"trigger firing rolls back to {w.previous}")
        return w.to_json()

    def stop(self, env: str) -> None:
        w = self.registry.end_watch(env)
        if w is not None and w.task is not None:
            w.task.cancel()

    def stop_all(self) -> None:
        for w in self.registry.watches():
            self.stop(w.env)

    async def _run(self, w: Watch, triggers: Triggers) -> None:
        since = int(w.started_at)
        t0 = self.clock.monotonic()
        try:
            async with self.targets.get(w.env).observe() as metrics:
                while True:
                    await metrics.next_tick(timeout=3.0)
                    firing = triggers.firing(metrics, w.release, since)
                    decision = decide_watch(elapsed=self.clock.monotonic() - t0, watch=w.watch_s, firing=firing)
                    w.reason = decision.reason
                    if decision.action == "done":
                        w.state = "done"
                        self.events.add(w.env, "watch", f"{w.release}: {decision.reason}")
                        break
                    if decision.action == "rollback":
                        w.state = "rolling_back"
                        fired = [e.to_json() for e in decision.firing]
                        self.events.add(w.env, "watch_rollback", f"rolling back {w.release} to {w.previous}: "
                                        f"{decision.reason}", data={"firing": fired})
                        # The rollback replaces what is watched: the watch ends before it starts.
                        self.registry.end_watch(w.env, w)
                        await self.rollback(w.env, w.previous,
                                            f"automatic rollback by the post-deploy watch: {decision.reason}",
                                            {"watch": {"release": w.release, "firing": fired}})
                        break
        finally:
            triggers.cancel()
            self.registry.end_watch(w.env, w)
