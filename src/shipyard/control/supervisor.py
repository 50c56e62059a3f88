"""The supervisor: one process per instance, kept running and watched.

Each instance has one asyncio task that owns its process: it waits for the process to exit (a pidfd, so
no polling) while the health checker probes it; a crash (or an OOM kill past its cgroups.py limit) is
restarted with backoff (1 s, 2 s … 30 s, reset once ready for a while), a liveness failure stops it and
starts it again. Housekeeping samples CPU%/RSS every few seconds; a ``logfiles.LogRotator`` rotates logs.

Instances run in their own sessions and write straight to their log files, so closing the supervisor (or
killing the control plane) leaves them running; a new supervisor ``adopt``s them by pid + start time.
Status changes reach the owner through ``on_change`` (every change after ``start``/``adopt`` returned,
except CPU/RSS samples, which are read through ``status``) and notable happenings
(``instance.started|adopted|crashed|oom_killed|restarted|unhealthy|unready|recovered|spawn_failed|stopped``)
through ``on_event``; both are called on the event loop and must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from shipyard.control import logfiles
from shipyard.control.cgroups import Cgroups, InstanceLimits
from shipyard.control.health import Action, HealthChecker, HealthState, http_probe, process_prober
from shipyard.control.instancespec import (
    BACKOFF_RESET_AFTER,
    InstanceSpec,
    InstanceStatus,
    OnChange,
    OnEvent,
    backoff_delay,
    instance_environment,
)
from shipyard.errors import ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import Clock

__all__ = ["InstanceSpec", "InstanceStatus", "Supervisor", "backoff_delay", "instance_environment"]

log = logging.getLogger("shipyard.supervisor")


@dataclass
class _Instance:
    spec: InstanceSpec
    status: InstanceStatus
    proc: process.ProcHandle | None = None
    task: asyncio.Task[None] | None = None
    streak: int = 0                  # crashes since it was last ready for a while (backoff step)
    ready_since: float | None = None  # monotonic
    health: HealthState | None = None
    restart_now: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Future[None] | None = None  # set while stop() runs, so a second call just waits
    probe_errors: list[str] = field(default_factory=list)  # the counted liveness failures in a row
    limits: InstanceLimits | None = None  # its cgroup or memory watch (InstanceSpec.limits)


class Supervisor:
    def __init__(self, *, clock: Clock, on_change: OnChange, on_event: OnEvent,
                 sample_interval: float = 5.0, log_max_bytes: int = logfiles.DEFAULT_MAX_BYTES,
                 log_keep: int = logfiles.DEFAULT_KEEP, cgroups: Cgroups | None = None) -> None:
        self.clock = clock
        self.on_change = on_change
        self.on_event = on_event
        self.sample_interval = sample_interval
        self.log_max_bytes = log_max_bytes
        self.log_keep = log_keep
        self._instances: dict[str, _Instance] = {}
        self._changed = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self.rotator = logfiles.LogRotator(log_max_bytes, log_keep)
        self._other_logs: list[Path] = []
        self.stamp_logs = False
        self._closed = False
        self.cgroups = cgroups  # None: limits are watched (memory) only

    # -- public API ------------------------------------------------------------------------------
    async def start(self, spec: InstanceSpec) -> InstanceStatus:
        """Start an instance; returns once its process runs (state ``starting``, not yet ready)."""
        self._check_open()
        if spec.id in self._instances:
            raise ShipyardError(f"instance {spec.id} is already running")
        process.parse_signal(spec.stop_signal)  # a bad signal fails now, not at stop time
        inst = self._new(spec)
        self._spawn(inst)  # raises: nothing registered for an instance that could not start
        self._instances[spec.id] = inst
        self._emit(spec.env, "instance.started", f"instance {spec.id} started (pid {inst.status.pid}, "
                   f"port {spec.port})", inst)
        if inst.limits is not None and (warning := inst.limits.unenforced()):
            self._emit(spec.env, "instance.limits_unenforced", f"instance {spec.id}: {warning}", inst)
        inst.task = asyncio.create_task(self._supervise(inst), name=f"supervise {spec.id}")
        self._ensure_housekeeping()
        return inst.status

    def adopt(self, spec: InstanceSpec, pid: int, create_time: float) -> bool:
        """Watch a live instance a previous control plane started; False when it is gone. It is not
        ready until a probe passes; if it dies it is restarted like any other."""
        self._check_open()
        if spec.id in self._instances:
            return True
        process.parse_signal(spec.stop_signal)
        if not process.is_alive(pid, create_time):
            return False
        inst = self._new(spec)
        inst.proc = process.ProcHandle(pid, create_time)
        if inst.limits is not None:
            inst.limits.prepare()  # its process is in its group already: the group is found again
        self._update(inst, pid=pid, create_time=create_time, started_at=create_time, adopted=True,
                     limits_enforced=inst.limits.enforced if inst.limits is not None else None)
        self._instances[spec.id] = inst
        self._emit(spec.env, "instance.adopted", f"instance {spec.id} adopted (pid {pid})", inst)
        inst.task = asyncio.get_running_loop().create_task(self._supervise(inst),
                                                           name=f"supervise {spec.id}")
        self._ensure_housekeeping()
        return True

    async def stop(self, id: str, grace: float | None = None) -> None:
        """Stop an instance for good (signal → grace → SIGKILL of its group) and forget it."""
        inst = self._instances.get(id)
        if inst is None:
            return
        if inst.stopped is not None:
            await asyncio.shield(inst.stopped)
            return
        inst.stopped = asyncio.get_running_loop().create_future()
        try:
            await self._stop(inst, grace)
        finally:
            inst.stopped.set_result(None)

    async def _stop(self, inst: _Instance, grace: float | None) -> None:
        id = inst.spec.id
        if inst.task is not None:
            inst.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await inst.task  # a task that died of a bug was logged already; stopping goes on
            inst.task = None
        self._update(inst, state="stopping", ready=False)
        how = "not running"
        if inst.proc is not None:
            how = await process.stop_process_group(
                inst.proc.pid, inst.proc.create_time, sig=inst.spec.stop_signal,
                grace=inst.spec.stop_grace if grace is None else grace, clock=self.clock)
            process.drop_samples(inst.proc.pid)
        self._update(inst, state="stopped", ready=False, last_exit=how)
        if inst.limits is not None:
            inst.limits.remove()
        self._emit(inst.spec.env, "instance.stopped", f"instance {id} {how}", inst)
        self._instances.pop(id, None)
        self._notify()

    def status(self, id: str) -> InstanceStatus | None:
        inst = self._instances.get(id)
        return inst.status if inst else None

    def all(self, env: str | None = None) -> list[InstanceStatus]:
        return [i.status for i in self._instances.values() if env is None or i.spec.env == env]

    async def wait_ready(self, ids: Iterable[str], timeout: float, *, max_restarts: int | None = None) -> bool:
        """True once every instance is ready; False at ``timeout``, when one was stopped, or (with
        ``max_restarts``) when one was restarted that many times during the wait without being ready
        — a crash loop fails fast instead of at the timeout."""
        wanted = list(ids)
        deadline = self.clock.monotonic() + timeout
        first = {i: s.restarts for i in wanted if (s := self.status(i)) is not None}
        while True:
            statuses = [self.status(i) for i in wanted]
            if any(s is None or s.state in ("stopping", "stopped") for s in statuses):
                return False
            if max_restarts is not None and any(
                    s is not None and not s.ready and s.restarts - first.get(s.id, 0) >= max_restarts
                    for s in statuses):
                return False
            if all(s is not None and s.ready for s in statuses):
                return True
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return False
            await self._wait_change(remaining)

    async def close(self, stop_instances: bool = False) -> None:
        """Stop watching. Instances keep running unless ``stop_instances``."""
        if stop_instances:
            await asyncio.gather(*(self.stop(i) for i in list(self._instances)))
        self._closed = True
        tasks = [i.task for i in self._instances.values() if i.task is not None]
        if self._housekeeping is not None:
            tasks.append(self._housekeeping)
        self.rotator.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._instances.clear()
        self._notify()

    # -- the per-instance task -------------------------------------------------------------------
    async def _supervise(self, inst: _Instance) -> None:
        try:
            while True:
                outcome = await self._watch(inst)
                await self._restart(inst, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug here must not silently leave an instance unwatched.
            log.exception("supervising %s failed", inst.spec.id)
            self._update(inst, state="crashed", ready=False, last_exit="supervisor error (see control log)")
            raise

    async def _watch(self, inst: _Instance) -> Literal["exited", "unhealthy"]:
        """Run health checks until the process exits or liveness calls for a restart."""
        assert inst.proc is not None
        proc = inst.proc
        inst.restart_now = asyncio.Event()
        # An adopted process started before we came: its start period is measured from then.
        started = self.clock.monotonic() - max(0.0, self.clock.time() - proc.create_time)
        spec = inst.spec  # a process type that is not routed is probed by being alive (or by its check)
        prober = (http_probe if spec.process == "web"
                  else process_prober(spec.check, spec.cwd, instance_environment(spec)))
        checker = HealthChecker(port=spec.port, live=spec.health, ready=spec.ready, clock=self.clock, started=started,
                                on_update=lambda st, acts: self._on_health(inst, st, acts), prober=prober)
        exited = asyncio.create_task(process.wait_exit(proc.pid, proc.create_time, clock=self.clock))
        unhealthy = asyncio.create_task(inst.restart_now.wait())
        probing = asyncio.create_task(checker.run())
        try:
            await asyncio.wait({exited, unhealthy}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (exited, unhealthy, probing):
                t.cancel()
            await asyncio.gather(exited, unhealthy, probing, return_exceptions=True)
        return "exited" if exited.done() and not exited.cancelled() else "unhealthy"

    async def _restart(self, inst: _Instance, outcome: Literal["exited", "unhealthy"]) -> None:
        spec = inst.spec
        assert inst.proc is not None
        proc = inst.proc
        if inst.ready_since is not None and self.clock.monotonic() - inst.ready_since >= BACKOFF_RESET_AFTER:
            inst.streak = 0
        inst.ready_since = None
        delay = backoff_delay(inst.streak)
        inst.streak += 1
        if outcome == "unhealthy":
            self._update(inst, state="restarting", ready=False)
            how = await process.stop_process_group(proc.pid, proc.create_time, sig=spec.stop_signal,
                                                   grace=spec.stop_grace, clock=self.clock)
            detail = inst.health.last_error if inst.health else None
            errors = tuple(inst.probe_errors[-spec.health.retries:])
            inst.probe_errors.clear()
            self._update(inst, last_exit=how, restart_cause="unhealthy", health_errors=errors)
            self._emit(spec.env, "instance.unhealthy",
                       f"instance {spec.id} failed {spec.health.retries} health checks in a row"
                       f"{f' ({detail})' if detail else ''}; restarting", inst,
                       probe_error=detail, stopped=how)
        else:
            code = process.reap(proc.pid)
            how = process.describe_exit(code)
            oom = inst.limits is not None and inst.limits.oom_killed(code)
            how = f"{inst.limits.describe()}, {how}" if oom and inst.limits is not None else how
            self._update(inst, state="crashed", ready=False, last_exit=how, restart_cause="oom" if oom else "exited",
                         oom_kills=inst.status.oom_kills + int(oom))
            leftovers = await process.kill_leftovers(proc.pid, clock=self.clock)
            self._emit(spec.env, "instance.oom_killed" if oom else "instance.crashed",
                       f"instance {spec.id} {how}; restarting in {delay:g}s", inst,
                       **process.exit_details(code), backoff_s=delay, killed_leftovers=leftovers,
                       **({"memory_limit": spec.limits.memory} if oom else {}))
        process.forget(proc.pid)
        process.drop_samples(proc.pid)
        await self.clock.sleep(delay)
        while True:
            try:
                self._spawn(inst)
                break
            except ShipyardError as err:
                delay = backoff_delay(inst.streak)
                inst.streak += 1
                self._update(inst, state="crashed", last_exit=str(err))
                self._emit(spec.env, "instance.spawn_failed", f"instance {spec.id}: {err}; retrying in "
                           f"{delay:g}s", inst, error=str(err), backoff_s=delay)
                await self.clock.sleep(delay)
        self._update(inst, restarts=inst.status.restarts + 1)
        self._emit(spec.env, "instance.restarted",
                   f"instance {spec.id} restarted (pid {inst.status.pid}, restart {inst.status.restarts})", inst)

    def _on_health(self, inst: _Instance, state: HealthState, actions: list[Action]) -> None:
        before = inst.health.live_failures if inst.health else 0
        inst.health = state
        if state.live_failures > before:
            inst.probe_errors.append(state.last_error or "failed")
        elif state.live_failures == 0:
            inst.probe_errors.clear()
        changes: dict[str, Any] = {"consecutive_health_failures": state.live_failures,
                                   "probe_error": state.last_error}
        if "ready" in actions:
            inst.ready_since = self.clock.monotonic()
            if inst.status.state == "unready":
                self._emit(inst.spec.env, "instance.recovered", f"instance {inst.spec.id} is ready again", inst)
            changes.update(state="ready", ready=True)
        if "unready" in actions:
            inst.ready_since = None
            changes.update(state="unready", ready=False)
            if "restart" not in actions:
                self._emit(inst.spec.env, "instance.unready",
                           f"instance {inst.spec.id} failed its readiness probe "
                           f"({state.last_error or 'no detail'}); out of rotation", inst,
                           probe_error=state.last_error)
        self._update(inst, **changes)
        if "restart" in actions:
            inst.restart_now.set()

    # -- helpers ---------------------------------------------------------------------------------
    def _spawn(self, inst: _Instance) -> None:
        spec = inst.spec
        join = inst.limits.prepare() if inst.limits is not None else []
        handle = process.spawn(spec.cmd, cwd=spec.cwd, env=instance_environment(spec), log_path=spec.log_path,
                               stamp=self.stamp_logs, join=join)
        inst.proc = handle
        inst.health = None
        self._update(inst, pid=handle.pid, create_time=handle.create_time, started_at=handle.create_time,
                     state="starting", ready=False, consecutive_health_failures=0, cpu_percent=0.0,
                     rss_bytes=0, adopted=False,
                     limits_enforced=inst.limits.enforced if inst.limits is not None else None)

    def _new(self, spec: InstanceSpec) -> _Instance:
        lim = InstanceLimits(self.cgroups, spec.id, spec.limits) if spec.limits else None
        return _Instance(spec, self._blank_status(spec), limits=lim)


    def _blank_status(self, spec: InstanceSpec) -> InstanceStatus:
        return InstanceStatus(id=spec.id, env=spec.env, release=spec.release, index=spec.index, port=spec.port,
                              pid=None, create_time=None, state="starting", ready=False, restarts=0,
                              started_at=None, role=spec.role, process=spec.process, memory_limit=spec.limits.memory,
                              cpu_limit=spec.limits.cpu)

    def _update(self, inst: _Instance, **changes: Any) -> None:
        new = replace(inst.status, **changes)
        if new == inst.status:
            return
        inst.status = new
        if inst.spec.id in self._instances:
            try:
                self.on_change(new)
            except Exception:
                log.exception("on_change callback failed for %s", inst.spec.id)
        self._notify()

    def _emit(self, env: str, kind: str, message: str, inst: _Instance, **data: Any) -> None:
        payload = {"instance": inst.spec.id, "release": inst.spec.release, "pid": inst.status.pid,
                   "restarts": inst.status.restarts, **data}
        log.info("%s: %s", kind, message)
        try:
            self.on_event(env, kind, message, payload)
        except Exception:
            log.exception("on_event callback failed (%s)", kind)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_change(self, timeout: float) -> None:
        changed = asyncio.ensure_future(self._changed.wait())
        timer = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({changed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            timer.cancel()
            await asyncio.gather(changed, timer, return_exceptions=True)

    def _check_open(self) -> None:
        if self._closed:
            raise ShipyardError("the supervisor is closed")

    def _ensure_housekeeping(self) -> None:
        if self._housekeeping is None or self._housekeeping.done():
            self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep(), name="housekeeping")
        # Its own thread: a flooding instance's log is looked at every few ms, whatever the loop is doing.
        self.rotator.start(self.log_paths)

    def log_paths(self) -> list[Path]:
        return [inst.spec.log_path for inst in self._instances.values()] + self._other_logs

    def configure_logs(self, max_bytes: int, keep: int, also: Iterable[Path] = (), timestamps: bool = False) -> None:
        """``[logs]``: rotation of instance logs and ``also`` (the control plane's own log) from now on;
        ``timestamps``: instances started from now on write through a stamper (primitives/logstamp.py)."""
        self.stamp_logs = timestamps
        self.rotator.max_bytes, self.rotator.keep = max_bytes, keep
        self._other_logs = list(also)
        self.rotator.start(self.log_paths)

    async def _housekeep(self) -> None:
        while self._instances:
            for inst in list(self._instances.values()):
                self._sample(inst)
            await self.clock.sleep(self.sample_interval)

    def _sample(self, inst: _Instance) -> None:
        proc = inst.proc
        if proc is None or inst.status.state in ("crashed", "stopping", "stopped"):
            return
        cpu, rss = process.sample(proc.pid)
        # Samples change on every tick; they are read through status(), not pushed via on_change.
        inst.status = replace(inst.status, cpu_percent=round(cpu, 1), rss_bytes=rss)
        if inst.limits is not None:
            inst.limits.watch(proc.pid, proc.create_time, rss)
