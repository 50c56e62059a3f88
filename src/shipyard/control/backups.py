"""Scheduled backups and restore drills, run by the control plane's cron scheduler.

Each environment with ``backup.schedule`` (and ``backup.drill_schedule``) gets a job; every run, and
every missed or failed occurrence, is recorded in the state store so ``backup list`` and ``status``
show it. The work itself runs in a thread: it is blocking I/O (pg_dump, compression, encryption).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from shipyard.control.scheduler import ScheduleEvent, Scheduler
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.control.daemon import Daemon

log = logging.getLogger("shipyard.control.backups")


def _open(d: Daemon, env: str) -> Any:
    from shipyard.engine.backup import Backups, load_key

    spec = d.load_spec()
    backup = spec.env(env).backup
    secret = d.secrets.values(env).get("BACKUP_KEY")
    key = load_key(secret, d.paths.state / "backup.key", create=True)
    return Backups(backup, key, base_dir=spec.project_dir, clock=d.clock)


def start_scheduler(d: Daemon) -> Scheduler | None:
    try:
        spec = d.load_spec()
    except ShipyardError as err:
        log.warning("backup schedules not started: %s", err)
        return None

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
        if getattr(backup, "drill_schedule", None):
            drills = d.store.list_drills(name, limit=1)
            sched.add(f"drill:{name}", backup.drill_schedule, _drill_job(d, name),
                      last_run=drills[0].started_at if drills else None)
            jobs += 1
    return sched if jobs else None


def _backup_job(d: Daemon, env: str) -> Any:
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


def _drill_job(d: Daemon, env: str) -> Any:
    async def job() -> None:
        from shipyard.engine.backup import run_drills

        results = await asyncio.to_thread(lambda: run_drills(_open(d, env), None))
        ok = all(r.ok for r in results)
        started = min((r.started_at for r in results), default=d.clock.time())
        d.store.add_drill(env, ok=ok, started_at=started, detail={"sources": [r.to_dict() for r in results]})
        if not ok:
            raise ShipyardError("restore drill missed an objective or failed a check")

    return job
