"""Scheduled backups and restore drills, run by the control plane's cron scheduler.

Each environment with ``backup.schedule`` (and ``backup.drill_schedule``) gets a job; every run, and
every missed or failed occurrence, is recorded in the state store so ``backup list`` and ``status``
show it. The work itself runs in a thread: it is blocking I/O (pg_dump, compression, encryption).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shipyard.control.events import EventLog
from shipyard.control.paths import Paths
from shipyard.control.scheduler import ScheduleEvent, Scheduler
from shipyard.engine.backup import Backups, load_key, run_drills
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control.backups")


@dataclass(frozen=True)
class _Deps:
    spec: Spec
    store: Store
    secrets: SecretStore
    paths: Paths
    clock: Clock
    events: EventLog

    def load_spec(self) -> Spec:
        return self.spec

    def event(self, env: str, kind: str, message: str) -> None:
        self.events.add(env, kind, message)


def _open(d: _Deps, env: str) -> Backups:
    spec = d.load_spec()
    backup = spec.env(env).backup
    if backup is None:
        raise ShipyardError(f"{env} has no [environments.{env}.backup]")
    secret = d.secrets.values(env).get("BACKUP_KEY")
    key = load_key(secret, d.paths.state / "backup.key", create=True)
    return Backups(backup, key, base_dir=spec.project_dir, clock=d.clock)


def start_scheduler(spec: Spec, *, store: Store, secrets: SecretStore, paths: Paths, clock: Clock,
                    events: EventLog) -> Scheduler | None:
    d = _Deps(spec, store, secrets, paths, clock, events)

    def on_event(ev: ScheduleEvent) -> None:
        if ev.kind == "ok":
            return
        env = ev.job.split(":", 2)[1]
        d.store.add_backup_run(env, "*", status=ev.kind, started_at=ev.due, finished_at=ev.at, backup_id=None,
                               detail={"job": ev.job, "error": ev.error, "count": ev.count})
        d.event(env, f"backup_{ev.kind}", f"{ev.job}: {ev.kind}" + (f" ({ev.error})" if ev.error else ""))

    sched = Scheduler(d.clock, on_event=on_event)
    jobs = 0
    for name in spec.environments:
        backup = spec.env(name).backup
        if backup is None:
            continue
        runs = d.store.list_backup_runs(name, limit=1)
        last = runs[0].started_at if runs else None
        if backup.schedule:
            sched.add(f"backup:{name}", backup.schedule, _backup_job(d, name), last_run=last)
            jobs += 1
        if backup.drill_schedule:
            drills = d.store.list_drills(name, limit=1)
            sched.add(f"drill:{name}", backup.drill_schedule, _drill_job(d, name),
                      last_run=drills[0].started_at if drills else None)
            jobs += 1
    return sched if jobs else None


def _backup_job(d: _Deps, env: str) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        results = await asyncio.to_thread(lambda: _open(d, env).run(None))
        for r in results:
            d.store.add_backup_run(env, r.source, status="ok" if r.ok else "failed", started_at=r.started_at,
                                   finished_at=r.started_at + r.duration_s, backup_id=r.backup_id,
                                   detail=r.to_dict())
        failed = [r.source for r in results if not r.ok]
        if failed:
            raise ShipyardError(f"backup of {', '.join(failed)} failed")

    return job


def _drill_job(d: _Deps, env: str) -> Callable[[], Awaitable[None]]:
    async def job() -> None:
        results = await asyncio.to_thread(lambda: run_drills(_open(d, env), None))
        ok = all(r.ok for r in results)
        started = min((r.started_at for r in results), default=d.clock.time())
        d.store.add_drill(env, ok=ok, started_at=started, detail={"sources": [r.to_dict() for r in results]})
        if not ok:
            raise ShipyardError("restore drill missed an objective or failed a check")

    return job
