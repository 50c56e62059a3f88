"""Process helpers for instances: spawn in an own session, identity checks, stop escalation, sampling.

A process is named by ``(pid, create_time)``: the start time guards every signal and check against
pid reuse after a control-plane restart. Instances write straight into their log file (no pipe to
us), so they outlive the process that started them.

Reaping: a child that has exited stays a zombie until we collect its status. Every place that sees one
of our children dead collects it on the spot (``is_alive``, ``wait_exit``, the stop escalation,
``kill_leftovers``), and every ``spawn`` and stop also sweeps the other children (``reap_exited``), so
a child whose stop was abandoned, or whose watcher died, does not stay ``<defunct>``. The status is
kept in its ``Popen`` until ``forget``, so ``reap`` still reports it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives import logstamp
from shipyard.primitives.clock import Clock, SystemClock
from shipyard.primitives.shellform import exec_form

__all__ = [
    "ProcHandle", "describe_exit", "drop_samples", "exec_form", "exit_details", "forget", "group_members",
    "is_alive", "is_child", "kill_leftovers", "parse_signal", "reap", "reap_exited", "sample", "spawn",
    "stop_process_group", "wait_exit",
]

log = logging.getLogger("shipyard.process")

# psutil rounds create_time to 10 ms on Linux; two readings of one process can differ by that much.
_CREATE_TIME_SLACK = 0.05

# Popen objects of the children this process started, kept so that we (and not subprocess' own
# garbage-time cleanup) reap them and learn their exit status.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcHandle:
    pid: int
    create_time: float


def spawn(cmd: str | list[str], *, cwd: Path, env: dict[str, str], log_path: Path,
          pass_fds: tuple[int, ...] = (), stamp: bool = False, join: Sequence[Path] = ()) -> ProcHandle:
    """Start ``cmd`` (through ``/bin/sh -c`` when a string) in its own session.

    stdout and stderr go directly to ``log_path`` opened ``O_APPEND``: no pipe through us, so the
    instance never sees EPIPE when the control plane dies, and rotation can cut the file under it.
    ``stamp``: through a detached ``logstamp`` process instead, which puts the time before each line.
    ``join``: ``cgroup.procs`` files the child writes itself into before it execs (resource limits).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    joins: list[int] = []
    try:
        joins = [os.open(f, os.O_WRONLY | os.O_CLOEXEC) for f in join]
        fd = logstamp.start(log_path) if stamp else os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                                                      0o600)
    except OSError as exc:
        for j in joins:
            os.close(j)
        raise ShipyardError(f"cannot open {exc.filename or log_path}: {exc.strerror or exc}") from exc

    def enter_cgroups() -> None:
        # In the child between fork and exec: only raw writes ("0" = the writing process).
        for j in joins:
            os.write(j, b"0")


    try:
        proc = subprocess.Popen(
            exec_form(cmd, env.get("PATH")) if isinstance(cmd, str) else cmd,
            shell=isinstance(cmd, str),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            pass_fds=pass_fds,  # e.g. the listening sockets a restarted router takes over
            preexec_fn=enter_cgroups if joins else None,
        )
    except FileNotFoundError as exc:
        what = cwd if not cwd.is_dir() else (cmd[0] if isinstance(cmd, list) else cmd)
        raise BadInput(f"cannot start {cmd!r}: {what} not found") from exc
    except OSError as exc:
        raise ShipyardError(f"cannot start {cmd!r} in {cwd}: {exc.strerror or exc}") from exc
    except subprocess.SubprocessError as exc:  # the child could not enter its cgroups
        raise ShipyardError(f"cannot start {cmd!r} in its cgroups: {exc}") from exc
    finally:
        os.close(fd)
        for j in joins:
            os.close(j)
    _children[proc.pid] = proc
    reap_exited()
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        # Already gone (a command that fails at once); its exit status is still ours to reap.
        create_time = time.time()
    log.info("spawned pid %d: %s", proc.pid, cmd)
    return ProcHandle(proc.pid, create_time)


def is_alive(pid: int, create_time: float) -> bool:
    """True when ``pid`` runs and is the same process (same start time); zombies are dead (and, when
    they are our children, reaped here)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _CREATE_TIME_SLACK:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def reap(pid: int) -> int | None:
    """Collect a child's exit status: returncode (negative = killed by that signal) or None.

    None when it still runs or when it is not our child (adopted processes' status is unknowable).
    Safe to call repeatedly: the status is remembered.
    """
    proc = _children.get(pid)
    if proc is None:
        return None
    code = proc.poll()
    return code


def reap_exited() -> list[int]:
    """Collect the exit status of every child of ours that has exited (the status stays readable
    through ``reap`` until ``forget``); returns their pids. Cheap: one ``waitpid(WNOHANG)`` each."""
    return [pid for pid, proc in list(_children.items()) if proc.poll() is not None]


def forget(pid: int) -> None:
    """Drop the bookkeeping for a reaped child."""
    proc = _children.get(pid)
    if proc is not None and proc.returncode is not None:
        del _children[pid]


def is_child(pid: int) -> bool:
    return pid in _children


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited (status unknown: not a child of this control plane)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exited with code {code}"


def exit_details(code: int | None) -> dict[str, object]:
    """``{"exit_code", "signal"}`` for events."""
    if code is None:
        return {"exit_code": None, "signal": None}
    if code < 0:
        try:
            return {"exit_code": None, "signal": signal.Signals(-code).name}
        except ValueError:
            return {"exit_code": None, "signal": str(-code)}
    return {"exit_code": code, "signal": None}


def parse_signal(name: str | int) -> signal.Signals:
    """``"SIGTERM"``, ``"TERM"``, ``"sigint"`` or a number → a signal."""
    if isinstance(name, int):
        try:
            return signal.Signals(name)
        except ValueError:
            raise BadInput(f"unknown signal {name}") from None
    key = name.strip().upper()
    if not key.startswith("SIG"):
        key = "SIG" + key
    try:
        return signal.Signals[key]
    except KeyError:
        raise BadInput(f"unknown signal {name!r} (e.g. SIGTERM, SIGINT, SIGQUIT)") from None


async def wait_exit(pid: int, create_time: float, *, clock: Clock | None = None,
                    poll_interval: float = 0.5) -> None:
    """Return once the process has exited (zombies count as exited).

    Event-driven through a pidfd where the kernel offers one (works for any process, child or
    not); otherwise polled every ``poll_interval`` through ``clock``.
    """
    clock = clock or SystemClock()
    if not is_alive(pid, create_time):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd >= 0:
        try:
            # The pid might have been reused between is_alive and pidfd_open: check again now
            # that the fd pins the process we mean.
            if not is_alive(pid, create_time):
                return
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()

            def readable() -> None:
                if not done.done():
                    done.set_result(None)

            loop.add_reader(pidfd, readable)
            try:
                await done
            finally:
                loop.remove_reader(pidfd)
        finally:
            os.close(pidfd)
        reap(pid)
        return
    while is_alive(pid, create_time):
        await clock.sleep(poll_interval)


async def _wait_group_gone(pid: int, create_time: float, timeout: float, clock: Clock) -> bool:
    """Wait until the leader and every live member of its group are gone, or ``timeout`` passes.

    The whole group counts: with ``sh -c "python3 app.py"`` the shell dies on SIGTERM at once while
    the app behind it is still finishing its requests, and it is owed its grace period.
    """
    deadline = clock.monotonic() + timeout
    step = 0.01
    while True:
        if not is_alive(pid, create_time):
            reap(pid)  # our zombie leader would count as a member
            if not _group_has_members(pid):
                return True
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            return False
        await clock.sleep(min(step, remaining))
        step = min(step * 2, 0.1)


def _group_has_members(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)  # cheap: ESRCH once the group is empty
    except (ProcessLookupError, PermissionError):
        return False
    # Something is in the group, but orphaned zombies (never reaped by a lax init) do not count.
    return bool(group_members(pgid))


def _killpg(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise ShipyardError(f"not allowed to signal process group {pgid}") from exc
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return False
        raise


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return found


async def stop_process_group(pid: int, create_time: float, *, sig: signal.Signals | str = signal.SIGTERM,
                             grace: float = 30.0, clock: Clock | None = None) -> str:
    """Stop an instance and everything in its process group; say how it ended.

    Escalates like kopf stops tasks: ``sig`` to the group → wait up to ``grace`` for the whole
    group to exit → SIGKILL the group → wait → reap (when it is our child). Each step is logged.
    Returns once no live process is left in the group, so the instance's port is free again.
    """
    clock = clock or SystemClock()
    sig = parse_signal(sig) if isinstance(sig, str) else sig
    if not is_alive(pid, create_time):
        code = reap(pid)
        forget(pid)
        if code is not None:
            # Our child died on its own; what it left in its group goes too (the group id cannot have
            # been reused while members remain).
            await kill_leftovers(pid, clock=clock)
        log.info("pid %d: not running (%s)", pid, describe_exit(code))
        return "not running" if code is None else f"already {describe_exit(code)}"

    # Our instances lead their own session, so the group id is the pid.
    log.info("pid %d: sending %s to its process group (grace %.1fs)", pid, sig.name, grace)
    _signal_group(pid, sig)
    obeyed = await _wait_group_gone(pid, create_time, grace, clock)
    if not obeyed:
        log.warning("pid %d: process group still running %.1fs after %s; sending SIGKILL", pid, grace, sig.name)
        _signal_group(pid, signal.SIGKILL)
        if not await _wait_group_gone(pid, create_time, 10.0, clock):
            # Unkillable (uninterruptible sleep): nothing more we can do than say so. Should it die
            # later, the next spawn or stop reaps it (reap_exited).
            log.error("pid %d: process group survived SIGKILL for 10s; abandoning it", pid)
            return f"did not die after SIGKILL (pid {pid} abandoned)"
    code = reap(pid)
    forget(pid)
    reap_exited()
    # An adopted instance's exit status went to its new parent; say only what we did.
    ended = f": {describe_exit(code)}" if code is not None else ""
    how = f"{sig.name}{ended}" if obeyed else f"SIGKILL after {grace:g}s grace{ended}"
    log.info("pid %d: stopped by %s", pid, how)
    return f"stopped by {how}"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """``sig``, then SIGCONT: a stopped process (SIGSTOP, SIGTSTP, a debugger) acts on no signal but
    SIGKILL until it runs again, so a frozen instance would otherwise sit out the whole grace period."""
    _killpg(pgid, sig)
    if sig != signal.SIGCONT:
        _killpg(pgid, signal.SIGCONT)


async def kill_leftovers(pgid: int, *, clock: Clock | None = None, timeout: float = 5.0) -> list[int]:
    """SIGKILL what is left of a process group whose leader has exited (workers of a crashed
    master would otherwise keep the instance's port); returns the pids that were left."""
    clock = clock or SystemClock()
    reap_exited()
    if not _group_has_members(pgid):
        return []
    left = group_members(pgid)
    log.warning("process group %d outlived its leader (%s); sending SIGKILL", pgid, left)
    _killpg(pgid, signal.SIGKILL)
    deadline = clock.monotonic() + timeout
    while _group_has_members(pgid) and clock.monotonic() < deadline:
        await clock.sleep(0.02)
    return left


# psutil.Process objects are kept between samples: cpu_percent() measures since the previous call.
_sampled: dict[int, psutil.Process] = {}


def _cached(pid: int) -> psutil.Process:
    proc = _sampled.get(pid)
    if proc is None or not proc.is_running():
        proc = psutil.Process(pid)
        proc.cpu_percent(None)  # first call primes the interval and returns 0.0
        _sampled[pid] = proc
    return proc


def sample(pid: int, *, include_children: bool = True) -> tuple[float, int]:
    """``(cpu_percent, rss_bytes)`` of the process (and, by default, its descendants, e.g. gunicorn
    workers) since the previous sample. ``(0.0, 0)`` for a process that is gone."""
    try:
        procs = [_cached(pid)]
    except psutil.Error:
        drop_samples(pid)
        return 0.0, 0
    if include_children:
        with contextlib.suppress(psutil.Error):
            for child in procs[0].children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    procs.append(_cached(child.pid))
    cpu = 0.0
    rss = 0
    for proc in procs:
        try:
            with proc.oneshot():
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
        except psutil.Error:
            _sampled.pop(proc.pid, None)
    return cpu, rss


def drop_samples(pid: int) -> None:
    """Forget the cached sampling state of a process (and its descendants that are gone)."""
    _sampled.pop(pid, None)
    for other in [p for p, proc in _sampled.items() if not proc.is_running()]:
        _sampled.pop(other, None)
