"""What runs on each environment right now: the deployment holding its lock, a canary, a watch.

One object with methods instead of dicts that several modules write: the lock is taken and released
here, a canary and a watch are registered and looked up here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.rollout.canary_runner import CanaryRun
from shipyard.errors import LockHeld


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


class Registry:
    def __init__(self) -> None:
        self._busy: dict[str, asyncio.Task[Any]] = {}
        self._canaries: dict[str, CanaryRun] = {}
        self._watches: dict[str, Watch] = {}

    # -- the environment lock (in memory; the state database holds the durable one) ------------------
    def is_busy(self, env: str) -> bool:
        return env in self._busy

    def hold(self, env: str, task: asyncio.Task[Any], holder: str) -> None:
        if env in self._busy:
            raise LockHeld(f"{holder} is already running on {env}; wait for it or check 'shipyard status'")
        self._busy[env] = task

    def release(self, env: str, task: asyncio.Task[Any] | None = None) -> None:
        if task is None or self._busy.get(env) is task:
            self._busy.pop(env, None)

    def busy_tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._busy.values())

    # -- canaries ----------------------------------------------------------------------------------
    def canary(self, env: str) -> CanaryRun | None:
        return self._canaries.get(env)

    def add_canary(self, run: CanaryRun) -> None:
        self._canaries[run.env] = run

    def remove_canary(self, run: CanaryRun) -> None:
        if self._canaries.get(run.env) is run:
            del self._canaries[run.env]

    # -- watches -----------------------------------------------------------------------------------
    def watch(self, env: str) -> Watch | None:
        return self._watches.get(env)

    def set_watch(self, w: Watch) -> None:
        self._watches[w.env] = w

    def end_watch(self, env: str, w: Watch | None = None) -> Watch | None:
        """Forget the environment's watch (only ``w``, when given); returns it."""
        current = self._watches.get(env)
        if current is None or (w is not None and current is not w):
            return None
        return self._watches.pop(env)

    def watches(self) -> list[Watch]:
        return list(self._watches.values())
