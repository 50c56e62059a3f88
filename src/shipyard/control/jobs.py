"""Scheduled jobs (``[jobs.NAME]``): a command run on a cron schedule, in the environment's time zone, in the
release serving the environment with its configuration and secrets — what a one-off run gets.

Every run is a row of ``job_runs`` (exit code, duration, the output's last lines; the whole output in
``logs/<env>/jobs/<job>-<run>.log``). ``concurrency`` has Kubernetes CronJob's meaning: ``forbid`` records
a run that comes while one is going as ``skipped``; ``allow`` starts it anyway; ``replace`` stops the
running one (recorded ``replaced``) and starts the new one. A run past its ``timeout`` gets the stop
escalation (its stop signal, ``stop.grace``, SIGKILL of its process group) and is recorded ``timed_out``.
A run that fails or times out is a ``job.failed`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shipyard.control.deploys.commands import release_environment
from shipyard.control.events import EventLog
from shipyard.control.notify import LifecycleHook
from shipyard.control.scheduler import Scheduler
from shipyard.control.target import Targets
from shipyard.engine.rollout.launch import Launch
from shipyard.errors import BadInput, NotFound
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.processes import JobSpec
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.jobs")

TAIL_LINES = 20
MAX_TAIL = 4096
MAX_LINE = 8192


@dataclass(frozen=True)
class JobPlace:
    """Where a job runs: the serving release, its directory there, its environment variables."""

    release: str
    cwd: Path
    environ: dict[str, str]


Where = Callable[[Spec, str], Awaitable[JobPlace]]


def serving_place(targets: Targets, store: Store) -> Where:
    """The local target's answer: the release serving ``env``, in its work dir, with the config and secrets
    its instances get."""

    async def where(spec: Spec, env: str) -> JobPlace:
        rec = store.get_environment(env)
        if rec is None or rec.current_release is None:
            raise BadInput(f"nothing serves {env} yet: a job runs in the serving release (deploy first)")
        rel = rec.current_release
        launch = targets.get(env).routing.launch.get(rel) or Launch.from_spec(spec, env)
        cwd = await targets.instances.workdir(env, rel)
        return JobPlace(rel, cwd, release_environment(targets.instances, env, launch, rel, cwd))

    return where


def job_timezone(spec: Spec, env: str) -> dt.tzinfo:
    """A job's schedule is read in its environment's time zone (``windows.timezone``, else UTC)."""
    windows = spec.env(env).windows
    return ZoneInfo(windows.timezone) if windows is not None else dt.UTC


@dataclass
class _Running:
    run_id: int
    task: asyncio.Task[None] | None = None
    replaced: bool = False

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()


class JobService:
    def __init__(self, *, store: Store, events: EventLog, clock: Clock, where: Where, logs: Path,
                 notify: LifecycleHook | None = None) -> None:
        self.store, self.events, self.clock, self.where, self.logs = store, events, clock, where, logs
        self.notify: LifecycleHook = notify or (lambda env, kind, summary, details: None)
        self._running: dict[tuple[str, str], list[_Running]] = {}
        self.scheduler: Scheduler | None = None

    # -- schedules -------------------------------------------------------------------------------
    def schedule(self, spec: Spec) -> Scheduler:
        """A scheduler with one entry per job and environment (``NAME@ENV``), read in that env's zone."""
        sched = Scheduler(self.clock)
        for name, job in sorted(spec.jobs.items()):
            for env in job.envs or spec.env_names:
                sched.add(f"{name}@{env}", job.schedule, self._fire(spec, name, env), tz=job_timezone(spec, env))
        self.scheduler = sched
        return sched

    def _fire(self, spec: Spec, name: str, env: str) -> Callable[[], Awaitable[object]]:
        async def fire() -> object:
            # The scheduler only starts runs: overlap is this service's concern (the job's concurrency).
            return await self.start(spec, env, name, trigger="schedule", scheduled_for=self.clock.time())
        return fire

    # -- runs ------------------------------------------------------------------------------------
    def job(self, spec: Spec, env: str, name: str) -> JobSpec:
        spec.env(env)
        job = spec.jobs.get(name)
        if job is None:
            known = ", ".join(sorted(spec.jobs)) or "none"
            raise NotFound(f"unknown job {name!r} (known: {known})")
        if job.envs and env not in job.envs:
            raise BadInput(f"job {name!r} does not run in {env} (its envs: {', '.join(job.envs)})")
        return job

    async def start(self, spec: Spec, env: str, name: str, *, trigger: str = "manual",
                    scheduled_for: float | None = None) -> int:
        """Start a run (or record it skipped); returns its run id. The run goes on in a task."""
        job = self.job(spec, env, name)
        key = (env, name)
        running = [r for r in self._running.get(key, []) if r.alive]
        if running and job.concurrency == "forbid":
            reason = f"run {running[0].run_id} was still going (concurrency = \"forbid\")"
            return self.store.add_job_run(env, name, release=None, trigger=trigger, scheduled_for=scheduled_for,
                                          status="skipped", started_at=self.clock.time(), reason=reason)
        if running and job.concurrency == "replace":
            for r in running:
                r.replaced = True
                if r.task is not None:
                    r.task.cancel()
            await asyncio.gather(*(r.task for r in running if r.task is not None), return_exceptions=True)
        place = await self.where(spec, env)
        run_id = self.store.add_job_run(env, name, release=place.release, trigger=trigger,
                                        scheduled_for=scheduled_for, status="running", started_at=self.clock.time())
        entry = _Running(run_id)
        entry.task = asyncio.create_task(self._run(env, name, job, place, entry), name=f"job {name}@{env}")
        self._running[key] = [*running, entry]
        return run_id

    async def wait(self, env: str, name: str) -> None:
        """Until no run of the job is going (for ``jobs run`` and tests)."""
        tasks = [r.task for r in self._running.get((env, name), []) if r.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, env: str, name: str, job: JobSpec, place: JobPlace, entry: _Running) -> None:
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        log_path = self.logs / env / "jobs" / f"{name}-{entry.run_id}.log"
        status, code, reason = "failed", None, None
        try:
            code = await self._execute(job, place, log_path, tail)
            if code is None:
                status, reason = "timed_out", f"stopped at its timeout ({format_duration(job.timeout)})"
            else:
                status = "succeeded" if code == 0 else "failed"
                reason = None if code == 0 else (f"killed by signal {-code}" if code < 0 else f"exited {code}")
        except asyncio.CancelledError:
            status, reason = ("replaced", "a newer run replaced it") if entry.replaced else (
                "failed", "the control plane stopped")
            if not entry.replaced:
                raise
        except OSError as exc:
            reason = f"cannot start: {exc.strerror or exc}"
        finally:
            text = "\n".join(tail)[-MAX_TAIL:]
            self.store.finish_job_run(entry.run_id, status=status, exit_code=code, finished_at=self.clock.time(),
                                      output_tail=text, reason=reason)
            if status in ("failed", "timed_out"):
                self.events.add(env, "job.failed", f"job {name} run {entry.run_id} {reason}",
                                data={"job": name, "run": entry.run_id, "status": status, "exit_code": code,
                                      "release": place.release, "tail": list(tail)[-5:]})
                self.notify(env, "job_failed", f"{env}: job {name} run {entry.run_id} {reason}",
                            {"description": "\n".join(list(tail)[-5:]), "job": name, "status": status})

    async def _execute(self, job: JobSpec, place: JobPlace, log_path: Path, tail: deque[str]) -> int | None:
        """The command's exit code (negative: killed by that signal); None when stopped at its timeout."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_shell(
            job.command, cwd=place.cwd, env=place.environ, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            limit=MAX_LINE * 2)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            async def pump() -> None:
                assert proc.stdout is not None
                while raw := await proc.stdout.readline():
                    line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")
                    out.write(line + "\n")
                    out.flush()
                    tail.append(line)

            pumping = asyncio.create_task(pump())
            try:
                if await self._within(proc.wait(), job.timeout):
                    await pumping
                    return proc.returncode
                # Past its timeout: its stop signal, its grace, then SIGKILL of everything it started.
                _signal(proc.pid, signal.Signals[job.stop.signal])
                if not await self._within(proc.wait(), job.stop.grace):
                    _signal(proc.pid, signal.SIGKILL)
                    await proc.wait()
                return None
            finally:
                if proc.returncode is None:  # cancelled (replaced, or shutting down): leave nothing running
                    _signal(proc.pid, signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError):
                        await proc.wait()
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)

    async def _within(self, aw: Awaitable[Any], seconds: float) -> bool:
        """Whether ``aw`` finished within ``seconds`` of the service's clock (a test clock in tests)."""
        work = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            return False
        return True

    # -- reading ---------------------------------------------------------------------------------
    def listing(self, spec: Spec, env: str | None) -> list[dict[str, Any]]:
        """Each job and environment: schedule, time zone, next run, running now, the last runs."""
        states: Mapping[str, Any] = {j.name: j for j in (self.scheduler.jobs() if self.scheduler else [])}
        out = []
        for name, job in sorted(spec.jobs.items()):
            for e in job.envs or spec.env_names:
                if env is not None and e != env:
                    continue
                st = states.get(f"{name}@{e}")
                runs = self.store.list_job_runs(e, name, limit=5)
                out.append({"job": name, "env": e, "schedule": job.schedule, "command": job.command,
                            "timezone": str(job_timezone(spec, e)), "concurrency": job.concurrency,
                            "timeout_s": job.timeout, "next_run": st.next_due if st else None,
                            "running": any(r.alive for r in self._running.get((e, name), [])),
                            "runs": [r.to_json() for r in runs]})
        return out

    async def close(self) -> None:
        tasks = [r.task for rs in self._running.values() for r in rs if r.task is not None and r.alive]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
