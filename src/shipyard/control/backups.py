"""The control plane's backup service: the one place backups are opened and recorded.

``BackupService`` is built from explicit collaborators (state store, secrets store, paths, a spec loader,
a clock). The cron scheduler (``start_scheduler``: ``backup.schedule`` and ``backup.drill_schedule``) and
the API routes (``shipyard backup …``, see ``control/reads.py``) both go through it, so a run, a drill and
every missed or failed scheduled occurrence is recorded exactly once, the same way. The work itself runs
in a worker thread (pg_dump, compression, encryption are blocking); the records are written after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shipyard.control.notify import LifecycleHook
from shipyard.control.paths import Paths
from shipyard.control.scheduler import ScheduleEvent, Scheduler
from shipyard.engine.backup import (
    Backups,
    BackupVerifyResult,
    DrillResult,
    ForgetResult,
    RestoreResult,
    RunResult,
    load_key,
    run_drills,
)
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control.backups")


class BackupService:
    def __init__(self, *, store: Store, secrets: SecretStore, paths: Paths, load_spec: Callable[[], Spec],
                 clock: Clock, notify: LifecycleHook | None = None) -> None:
        self.notify: LifecycleHook = notify or (lambda env, kind, summary, details: None)
        self.store = store
        self.secrets = secrets
        self.paths = paths
        self.load_spec = load_spec
        self.clock = clock

    # -- opening -----------------------------------------------------------------------------------------
    def open(self, env: str, *, create_key: bool = False) -> Backups:
        """The environment's backups with its key (the BACKUP_KEY secret, else ``.shipyard/backup.key``,
        generated when ``create_key``). Spec and key are read on every call: edits apply without a restart."""
        spec = self.load_spec()
        backup = spec.env(env).backup
        if backup is None:
            raise BadInput(f"environment {env!r} has no backups configured ([environments.{env}.backup])")
        values = self.secrets.values(env)
        key = load_key(values.get("BACKUP_KEY"), self.paths.state / "backup.key", create=create_key)
        return Backups(backup, key, base_dir=spec.project_dir, clock=self.clock, secrets=values,
                       lock_dir=self.paths.state / "backup-locks")

    # -- recording ---------------------------------------------------------------------------------------
    def _record(self, what: str, fn: Callable[[], object], warnings: list[str]) -> None:
        """A store problem is reported (``warnings``, the log) but does not undo the work done."""
        try:
            fn()
        except ShipyardError as exc:
            log.warning("could not record the %s: %s", what, exc)
            warnings.append(f"could not record the {what}: {exc}")

    def event(self, env: str, kind: str, message: str) -> None:
        log.info("%s: %s", env, message)
        self.store.add_event(env, kind, message, at=self.clock.time())

    # -- operations (async: the work in a thread, the records on the loop) ---------------------------------
    async def run(self, env: str, source: str | None = None) -> tuple[list[RunResult], list[str]]:
        backups = self.open(env, create_key=True)
        results = await asyncio.to_thread(backups.run, source)
        warnings: list[str] = []

        def record() -> None:
            for r in results:
                self.store.add_backup_run(env, r.source, status="ok" if r.ok else "failed",
                                          started_at=r.started_at, finished_at=r.started_at + r.duration_s,
                                          backup_id=r.backup_id, detail=r.to_dict())

        self._record("backup run", record, warnings)
        return results, warnings

    async def drill(self, env: str, source: str | None = None, *, create_key: bool = False
                    ) -> tuple[list[DrillResult], list[str]]:
        backups = self.open(env, create_key=create_key)
        results = await asyncio.to_thread(run_drills, backups, source)
        ok = all(r.ok for r in results)
        started = min((r.started_at for r in results), default=self.clock.time())
        warnings: list[str] = []
        self._record("drill", lambda: self.store.add_drill(
            env, ok=ok, started_at=started, detail={"sources": [r.to_dict() for r in results]}), warnings)
        if not ok:
            self.notify(env, "drill_missed", f"the restore drill of {env} missed its objectives or failed a check",
                        {"description": drill_description(results)})
        return results, warnings

    async def verify(self, env: str, source: str | None = None, subset: float | None = None
                     ) -> list[BackupVerifyResult]:
        backups = self.open(env)
        return await asyncio.to_thread(backups.verify, source, subset)

    async def restore(self, env: str, source: str, *, backup_id: str | None, to_url: str | None,
                      to_path: Path | None, replace: bool, at: str | None) -> RestoreResult:
        backups = self.open(env)
        return await asyncio.to_thread(lambda: backups.restore(source, backup_id=backup_id, to_url=to_url,
                                                               to_path=to_path, replace=replace, at=at))

    async def forget(self, env: str, source: str | None, dry_run: bool) -> list[ForgetResult]:
        backups = self.open(env)
        return await asyncio.to_thread(backups.forget, source, dry_run)

    async def listing(self, env: str, source: str | None) -> dict[str, Any]:
        """``backup list``: complete backups (newest last), PITR repositories, recent failed or missed runs."""
        backups = self.open(env)
        manifests = await asyncio.to_thread(backups.list_backups, source)
        pitr = await asyncio.to_thread(backups.pitr_status, source)
        problems = [r for r in self.store.list_backup_runs(env, limit=20)
                    if r.status != "ok" and (source is None or r.source == source)]
        return {"env": env, "repository": backups.repo.url,
                "backups": [{"id": m.id, "source": m.source, "kind": m.kind, "created_at": m.created_at,
                             "snapshot_time": m.snapshot_time, "plain_size": m.plain_size,
                             "stored_size": m.stored_size, "meta": m.meta} for m in manifests],
                "pitr": [p.to_dict() for p in pitr],
                "problems": [{"source": r.source, "status": r.status, "started_at": r.started_at,
                              "detail": r.detail} for r in problems]}

    # -- schedules ---------------------------------------------------------------------------------------
    def on_schedule_event(self, ev: ScheduleEvent) -> None:
        if ev.kind == "ok":
            return
        env = ev.job.split(":", 2)[1]
        self.store.add_backup_run(env, "*", status=ev.kind, started_at=ev.due, finished_at=ev.at, backup_id=None,
                                  detail={"job": ev.job, "error": ev.error, "count": ev.count})
        self.event(env, f"backup_{ev.kind}", f"{ev.job}: {ev.kind}" + (f" ({ev.error})" if ev.error else ""))
        if ev.job.startswith("drill:") and ev.kind == "missed":
            self.notify(env, "drill_missed", f"the scheduled restore drill of {env} was missed", {})
        elif ev.job.startswith("backup:") and ev.kind in ("failed", "missed"):
            self.notify(env, f"backup_{ev.kind}", f"scheduled backup of {env} {ev.kind}"
                        + (f": {ev.error}" if ev.error else ""), {"description": f"job {ev.job}, due {ev.due:.0f}"})

    def backup_job(self, env: str) -> Callable[[], Any]:
        async def job() -> None:
            results, _ = await self.run(env)
            failed = [r.source for r in results if not r.ok]
            if failed:
                raise ShipyardError(f"backup of {', '.join(failed)} failed")

        return job

    def drill_job(self, env: str) -> Callable[[], Any]:
        async def job() -> None:
            results, _ = await self.drill(env, create_key=True)
            if not all(r.ok for r in results):
                raise ShipyardError("restore drill missed an objective or failed a check")

        return job


def drill_description(results: list[DrillResult]) -> str:
    """The failed checks of each source's drill (an objective says measured > objective)."""
    return "\n".join(f"{r.source}: {c.name}: {c.detail}" for r in results for c in r.checks if not c.ok)


def start_scheduler(service: BackupService) -> Scheduler | None:
    """A scheduler with a job per ``backup.schedule`` / ``backup.drill_schedule``; None when there are none."""
    try:
        spec = service.load_spec()
    except ShipyardError as err:
        log.warning("backup schedules not started: %s", err)
        return None
    sched = Scheduler(service.clock, on_event=service.on_schedule_event)
    jobs = 0
    for name in spec.environments:
        envspec = spec.env(name)
        backup = envspec.backup
        if backup is None:
            continue
        # Cron expressions read in the environment's time zone (its deploy windows'), else the machine's.
        tz = ZoneInfo(envspec.windows.timezone) if envspec.windows is not None else None
        if backup.schedule:
            runs = service.store.list_backup_runs(name, limit=1)
            sched.add(f"backup:{name}", backup.schedule, service.backup_job(name),
                      last_run=runs[0].started_at if runs else None, tz=tz)
            jobs += 1
        if backup.drill_schedule:
            drills = service.store.list_drills(name, limit=1)
            sched.add(f"drill:{name}", backup.drill_schedule, service.drill_job(name),
                      last_run=drills[0].started_at if drills else None, tz=tz)
            jobs += 1
    return sched if jobs else None
