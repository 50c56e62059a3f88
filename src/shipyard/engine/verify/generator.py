"""The open-model load generator: requests leave on schedule whatever the server does.

Request ``i`` is due at ``t0 + schedule.time_of(i)``; a timer chain sends every due request to an idle
keep-alive connection, or queues it and opens another connection (up to ``max_conns``). Latency is
measured from the scheduled time, so a server that stalls cannot slow the generator down and hide
its stall (coordinated omission). Requests queued longer than ``timeout`` are dropped and counted.

Plain asyncio Protocols and httptools keep the per-request cost low (≥ 10,000 req/s from one core on
uvloop). Timing uses ``time.perf_counter``: uvloop's ``loop.time()`` only has millisecond resolution.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from shipyard.engine.verify.recorder import LoadRecorder
from shipyard.engine.verify.scenarios import PreparedScenario
from shipyard.engine.verify.schedule import Schedule
from shipyard.errors import ShipyardError

_SWEEP = 0.1  # seconds between timeout sweeps and progress ticks
_CONNECT_TIMEOUT = 5.0
_MIN_TICK = 0.001


@dataclass(frozen=True)
class Progress:
    """Live figures, about once a second."""

    elapsed: float
    run_seconds: float  # ramp + duration
    sent: int
    total: int
    rate: float  # responses in the last whole second
    p95_ms: float  # of the last whole second
    failed: int
    inflight: int
    connections: int


@dataclass(frozen=True)
class GeneratorStats:
    wall_s: float
    cpu_s: float  # CPU time of the generator's thread
    connections_opened: int
    max_connections: int
    connect_errors: int
    backlog_max: int


class _Conn(asyncio.Protocol):
    __slots__ = ("gen", "parser", "transport", "sched", "sent", "scenario", "status", "headers_done", "closed")

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.sched = -1.0  # scheduled time of the request in flight; < 0 when idle
        self.sent = 0.0
        self.scenario = 0
        self.status = 0
        self.headers_done = False
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.gen._failed(self, "bad response")
            self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gen._lost(self)

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        if self.sched >= 0 and self.gen.scenarios[self.scenario].method == "HEAD":
            # llhttp cannot be told a response has no body; finish here and start a fresh parser.
            self.parser = httptools.HttpResponseParser(self)
            self._complete(True)

    def on_message_complete(self) -> None:
        if self.sched >= 0:
            self._complete(self.parser.should_keep_alive())

    def _complete(self, keep_alive: bool) -> None:
        self.headers_done = False
        self.gen._response(self, self.status, keep_alive)
        if not keep_alive:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


class Generator:
    def __init__(self, host: str, port: int, scenarios: list[PreparedScenario], picks: list[int], schedule: Schedule,
                 *, max_conns: int, timeout: float,
                 on_tick: Callable[[Progress], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.scenarios = scenarios
        self.picks = picks
        self.schedule = schedule
        self.max_conns = max_conns
        self.timeout = timeout
        self.on_tick = on_tick
        self.rec = LoadRecorder(len(scenarios), steady_from=schedule.ramp)
        self.t0 = 0.0
        self._next = 0
        self._total = schedule.total
        self._idle: list[_Conn] = []
        self._conns: set[_Conn] = set()
        self._connecting = 0
        self._backlog: deque[tuple[float, int]] = deque()  # (scheduled time, request index)
        self._stopped = False
        self._stop_requested = False
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_tick_sec = 0
        self._opened = 0
        self._max_open = 0
        self._connect_errors = 0
        self._backlog_max = 0
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def request_stop(self) -> None:
        """End the run early; callable from any thread."""
        self._stop_requested = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.stop)

    def stop(self) -> None:
        self._stopped = True
        self._next = self._total
        self._maybe_finish()

    async def run(self) -> GeneratorStats:
        loop = self._loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        # Warm a few connections so the first requests do not pay for the TCP handshake.
        warm = min(self.max_conns, max(1, int(self.schedule.rate // 2000) + 1))
        opened = await asyncio.gather(*(self._open() for _ in range(warm)))
        if not any(opened):
            raise ShipyardError(f"cannot connect to {self.host}:{self.port}: nothing is listening there "
                                f"(is the environment running?)")
        if self._stop_requested:
            self.stop()
        cpu0 = _thread_cpu()
        self.t0 = time.perf_counter()
        loop.call_soon(self._tick)
        sweeper = loop.call_later(_SWEEP, self._sweep)
        try:
            # Everything is sent by the end of the schedule and answered or timed out a timeout later.
            await asyncio.wait_for(asyncio.shield(self._done), self.schedule.end + self.timeout + 5.0)
        except TimeoutError:
            self.stop()
        finally:
            sweeper.cancel()
            for conn in list(self._conns):
                conn._close()
        wall = time.perf_counter() - self.t0
        return GeneratorStats(wall, _thread_cpu() - cpu0, self._opened, self._max_open, self._connect_errors,
                              self._backlog_max)

    # --- scheduling -------------------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            self._tick_once()
        except Exception as exc:  # a bug must end the run, not leave it waiting forever
            if self._done is not None and not self._done.done():
                self._done.set_exception(exc)

    def _tick_once(self) -> None:
        if self._stopped:
            return
        now = time.perf_counter() - self.t0
        due = self.schedule.due_by(now)
        time_of = self.schedule.time_of
        picks = self.picks
        n_picks = len(picks)
        i = self._next
        while i < due:
            self._dispatch(time_of(i), picks[i % n_picks])
            i += 1
        self._next = i
        if i >= self._total:
            self._maybe_finish()
            return
        assert self._loop is not None
        delay = time_of(i) - (time.perf_counter() - self.t0)
        # uvloop rounds delays to whole milliseconds and runs shorter ones on the next loop iteration; waiting
        # at least 1 ms sends requests in batches instead of spinning a core (they are at most ~1 ms late).
        self._loop.call_later(delay if delay > _MIN_TICK else _MIN_TICK, self._tick)

    def _dispatch(self, sched: float, scenario: int) -> None:
        if self._idle:
            self._send(self._idle.pop(), sched, scenario)
            return
        self._backlog.append((sched, scenario))
        if len(self._backlog) > self._backlog_max:
            self._backlog_max = len(self._backlog)
        self._grow()

    def _send(self, conn: _Conn, sched: float, scenario: int) -> None:
        assert conn.transport is not None
        conn.transport.write(self.scenarios[scenario].payload)
        conn.sched = sched
        conn.scenario = scenario
        sent = conn.sent = time.perf_counter() - self.t0
        self._inflight += 1
        self.rec.on_sent(sched, sent)

    def _give_work(self, conn: _Conn) -> None:
        backlog = self._backlog
        while backlog:
            sched, scenario = backlog.popleft()
            if time.perf_counter() - self.t0 - sched > self.timeout:
                self.rec.on_dropped(sched)
                continue
            self._send(conn, sched, scenario)
            return
        self._idle.append(conn)
        self._maybe_finish()

    # --- connections ------------------------------------------------------------------------------------

    def _grow(self) -> None:
        # One new connection per queued request, up to the cap.
        while (self._connecting < len(self._backlog)
               and len(self._conns) + self._connecting < self.max_conns and not self._stopped):
            self._connecting += 1
            assert self._loop is not None
            task = self._loop.create_task(self._open_for_backlog())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _open(self) -> _Conn | None:
        assert self._loop is not None
        try:
            _, proto = await asyncio.wait_for(
                self._loop.create_connection(lambda: _Conn(self), self.host, self.port), _CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            self._connect_errors += 1
            return None
        conn: _Conn = proto
        self._conns.add(conn)
        self._opened += 1
        self._max_open = max(self._max_open, len(self._conns))
        if self.t0 == 0.0:  # warm-up, before the clock starts
            self._idle.append(conn)
        return conn

    async def _open_for_backlog(self) -> None:
        try:
            conn = await self._open()
        finally:
            self._connecting -= 1
        if conn is None:
            # The target refuses connections: fail the oldest queued request rather than let it rot.
            if self._backlog:
                sched, scenario = self._backlog.popleft()
                now = time.perf_counter() - self.t0
                self.rec.on_sent(sched, now)
                self.rec.on_error(sched, now, "connect", scenario, None)
                self._grow()
            self._maybe_finish()
            return
        if conn.closed:
            return
        self._give_work(conn)

    def _response(self, conn: _Conn, status: int, keep_alive: bool) -> None:
        sched, sent, scenario = conn.sched, conn.sent, conn.scenario
        conn.sched = -1.0
        self._inflight -= 1
        now = time.perf_counter() - self.t0
        self.rec.on_response(sched, sent, now, status, self.scenarios[scenario].ok(status), scenario)
        if keep_alive and not self._stopped:
            self._give_work(conn)
        else:
            self._maybe_finish()

    def _failed(self, conn: _Conn, kind: str) -> None:
        if conn.sched < 0:
            return
        sched, sent, scenario = conn.sched, conn.sent, conn.scenario
        conn.sched = -1.0
        self._inflight -= 1
        self.rec.on_error(sched, time.perf_counter() - self.t0, kind, scenario, sent)

    def _lost(self, conn: _Conn) -> None:
        if conn.sched >= 0:
            if conn.headers_done:
                # A response delimited by connection close: it is complete now.
                conn._complete(False)
            else:
                self._failed(conn, "reset")
        self._conns.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        if self._backlog:
            self._grow()
        self._maybe_finish()

    def _sweep(self) -> None:
        assert self._loop is not None
        now = time.perf_counter() - self.t0
        for conn in list(self._conns):
            if conn.sched >= 0 and now - conn.sched > self.timeout:
                self._failed(conn, "timeout")
                conn._close()
        backlog = self._backlog
        while backlog and now - backlog[0][0] > self.timeout:
            self.rec.on_dropped(backlog.popleft()[0])
        sec = int(now)
        if sec > self._last_tick_sec:
            self._last_tick_sec = sec
            self._emit_tick(now)
        self._maybe_finish()
        if not (self._done and self._done.done()):
            self._loop.call_later(_SWEEP, self._sweep)

    def _emit_tick(self, now: float) -> None:
        if self.on_tick is None:
            return
        seconds = self.rec.seconds
        last = seconds[int(now) - 1] if 0 < int(now) <= len(seconds) else None
        q95 = last.hist.quantile(0.95) if last else None
        p95 = q95 * 1000 if q95 is not None else float("nan")
        self.on_tick(Progress(now, self.schedule.end, self._next, self._total, float(last.requests) if last else 0.0, p95,
                          sum(s.failed for s in seconds), self._inflight, len(self._conns)))

    def _maybe_finish(self) -> None:
        if self._done is None or self._done.done():
            return
        if self._next < self._total:
            return
        if self._stopped or (not self._backlog and self._inflight == 0):
            self._done.set_result(None)
            for task in self._tasks:
                task.cancel()


def _thread_cpu() -> float:
    who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
