"""Liveness and readiness probes for instances.

Split in two, like h11 from its I/O: a pure probe state machine (``initial``/``due``/``begin``/
``record`` over a frozen ``HealthState``: given probe results and times, what to do) and a thin
driver (``HealthChecker``) that runs HTTP probes on 127.0.0.1 when the machine says they are due.

Semantics (Docker's start period, Kubernetes' thresholds):
- liveness (``app.health``) is first probed one interval after start, then every interval.
  Failures inside ``start_period`` do not count — unless a probe has already passed, which ends
  the start period early. ``retries`` counted failures in a row → unready + restart.
- readiness (``app.ready``) is polled quickly while the instance is not ready (so a deploy sees it
  ready within a fraction of a second), then every interval. One pass → ready; ``retries``
  failures in a row → unready (no restart). Without a readiness probe, a passing health probe
  makes the instance ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from shipyard.primitives.clock import Clock
from shipyard.primitives.probe import Probe

Kind = Literal["live", "ready"]
Action = Literal["ready", "unready", "restart"]

# Readiness polling while not ready: starts fast, grows ×1.25 per poll, capped by this and the interval.
STARTUP_POLL_FIRST = 0.05
STARTUP_POLL_MAX = 0.5


@dataclass(frozen=True)
class HealthState:
    started: float                 # monotonic time the process started
    next_live: float
    next_ready: float
    ready: bool = False
    live_passed: bool = False      # a liveness pass since start ends the start period
    live_failures: int = 0         # counted consecutive liveness failures
    ready_failures: int = 0        # consecutive readiness failures while ready
    ready_polls: int = 0           # readiness polls since it was last ready (startup backoff)
    failed: bool = False           # restart decided: probing stops
    last_error: str | None = None


def initial(live: Probe, started: float, now: float) -> HealthState:
    """State for a process that started at monotonic ``started`` (earlier than ``now`` when adopted)."""
    return HealthState(started=started, next_live=max(now, started + live.interval), next_ready=now)


def _ready_probe(live: Probe, ready: Probe | None) -> Probe:
    return ready if ready is not None else live


def _startup_poll(state: HealthState, probe: Probe) -> float:
    cap = min(probe.interval, STARTUP_POLL_MAX)
    return float(min(cap, STARTUP_POLL_FIRST * 1.25 ** state.ready_polls))


def due(state: HealthState, ready: Probe | None, now: float) -> list[Kind]:
    """Which probes to run now."""
    if state.failed:
        return []
    kinds: list[Kind] = []
    if now >= state.next_live:
        kinds.append("live")
    # Without a readiness probe, a ready instance is watched by liveness alone.
    if now >= state.next_ready and (ready is not None or not state.ready):
        kinds.append("ready")
    return kinds


def next_wakeup(state: HealthState, ready: Probe | None) -> float:
    if ready is None and state.ready:
        return state.next_live
    return min(state.next_live, state.next_ready)


def begin(state: HealthState, live: Probe, ready: Probe | None, kinds: list[Kind],
          now: float) -> HealthState:
    """Schedule the next run of the probes started at ``now`` (intervals run start to start)."""
    if "live" in kinds:
        state = replace(state, next_live=now + live.interval)
    if "ready" in kinds:
        probe = _ready_probe(live, ready)
        gap = probe.interval if state.ready else _startup_poll(state, probe)
        state = replace(state, next_ready=now + gap, ready_polls=state.ready_polls + (not state.ready))
    return state


def record(state: HealthState, live: Probe, ready: Probe | None, kind: Kind, ok: bool,
           now: float, detail: str | None = None) -> tuple[HealthState, list[Action]]:
    """Fold one probe result into the state; return the actions it calls for."""
    if state.failed:
        return state, []
    actions: list[Action] = []
    if kind == "ready" and ready is None:
        # The health path polled for readiness: a pass is a liveness pass too; a failure while
        # starting says nothing the liveness schedule will not say.
        if not ok:
            return replace(state, last_error=detail), []
        kind = "live"
    if kind == "live":
        if ok:
            state = replace(state, live_passed=True, live_failures=0, last_error=None)
            if ready is None and not state.ready:
                state = replace(state, ready=True, ready_polls=0)
                actions.append("ready")
            return state, actions
        state = replace(state, last_error=detail)
        if not state.live_passed and now < state.started + live.start_period:
            return state, []
        state = replace(state, live_failures=state.live_failures + 1)
        if state.live_failures >= live.retries:
            if state.ready:
                actions.append("unready")
            actions.append("restart")
            state = replace(state, ready=False, failed=True)
        return state, actions
    assert ready is not None
    if ok:
        state = replace(state, ready_failures=0, last_error=None)
        if not state.ready:
            state = replace(state, ready=True, ready_polls=0)
            actions.append("ready")
        return state, actions
    state = replace(state, last_error=detail)
    if not state.ready:
        return state, []
    state = replace(state, ready_failures=state.ready_failures + 1)
    if state.ready_failures >= ready.retries:
        state = replace(state, ready=False, ready_failures=0, ready_polls=0, next_ready=now)
        actions.append("unready")
    return state, actions


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200", "503", "connection refused", "timed out after 1s"


async def http_probe(port: int, path: str, timeout: float, host: str = "127.0.0.1") -> ProbeResult:
    """``GET path`` over HTTP/1.1 with ``timeout`` for the whole exchange; 2xx/3xx pass."""
    try:
        return await asyncio.wait_for(_get_status(host, port, path), timeout)
    except TimeoutError:
        return ProbeResult(False, f"timed out after {timeout:g}s")
    except ConnectionRefusedError:
        return ProbeResult(False, "connection refused")
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        return ProbeResult(False, f"{type(exc).__name__}: {exc}")


async def _get_status(host: str, port: int, path: str) -> ProbeResult:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: shipyard-probe\r\n"
            f"Connection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        line = await reader.readline()
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP response: {line[:60]!r}")
        code = int(parts[1])
        return ProbeResult(200 <= code < 400, str(code))
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


Prober = Callable[[int, str, float], Awaitable[ProbeResult]]


def process_prober(check: str | None, cwd: Path, env: dict[str, str]) -> Prober:
    """The probe of a process type that is not routed (a worker): it passes while the process is alive
    (the supervisor restarts a dead one), or, with a ``check`` command, while that exits 0."""

    async def probe(_port: int, _path: str, timeout: float) -> ProbeResult:
        if check is None:
            return ProbeResult(True, "alive")
        proc = await asyncio.create_subprocess_shell(check, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                     stdout=asyncio.subprocess.DEVNULL,
                                                     stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            code = await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return ProbeResult(False, f"check timed out after {timeout:g}s")
        return ProbeResult(code == 0, f"check exited {code}")

    return probe
OnUpdate = Callable[[HealthState, list[Action]], None]


class HealthChecker:
    """Probes one instance until the state machine decides on a restart (or it is cancelled).

    ``on_update(state, actions)`` is called after each probe result that changed something worth
    reporting (actions, failure counts).
    """

    def __init__(self, *, port: int, live: Probe, ready: Probe | None, clock: Clock,
                 started: float, on_update: OnUpdate, prober: Prober = http_probe) -> None:
        self.port = port
        self.live = live
        self.ready = ready
        self.clock = clock
        self.on_update = on_update
        self.prober = prober
        self.state = initial(live, started, clock.monotonic())

    async def run(self) -> None:
        while not self.state.failed:
            now = self.clock.monotonic()
            kinds = due(self.state, self.ready, now)
            if kinds:
                self.state = begin(self.state, self.live, self.ready, kinds, now)
                results = await asyncio.gather(*(self._probe(k) for k in kinds))
                for kind, result in zip(kinds, results, strict=True):
                    before = self.state
                    self.state, actions = record(self.state, self.live, self.ready, kind, result.ok,
                                                 self.clock.monotonic(), result.detail)
                    if actions or before.live_failures != self.state.live_failures:
                        self.on_update(self.state, actions)
                continue
            wait = next_wakeup(self.state, self.ready) - self.clock.monotonic()
            await self.clock.sleep(max(wait, 0.0))

    async def _probe(self, kind: Kind) -> ProbeResult:
        probe = self.live if kind == "live" else _ready_probe(self.live, self.ready)
        return await self.prober(self.port, probe.path, probe.timeout)
