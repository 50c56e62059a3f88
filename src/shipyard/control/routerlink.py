"""The control plane's link to its router processes: calls, in-flight counts, port checks, table pushes.

Router refusals are raised (``RouterError``), never turned into values a caller could misread: a
refused ``stats`` call is not "0 requests in flight". Table pushes are coalesced per environment: a
burst of readiness flips becomes one push of the newest table.

Workers: an environment with ``[router] workers = N`` is served by router processes 0..N-1, each bound to
its port with SO_REUSEPORT (the kernel spreads connections). Every table goes to each of them; calls about
an environment go to all of its workers and their replies are merged (``primitives.routermerge``), so
callers see one router. Worker 0 serves every environment and is the one started at ``shipyard up``.

Held listeners: after a table with a new address is applied, the link asks worker 0 for its listening
sockets (``hand_over``, SCM_RIGHTS) and keeps them open. A router that dies then does not close its ports:
the kernel queues new connections in their backlog, and the restarted router gets the same sockets
(``--listener HOST:PORT:FD``) and accepts them — clients see a delay, not "connection refused".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from shipyard.control.paths import Paths
from shipyard.control.tasks import guarded
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import Clock
from shipyard.primitives.listenerpass import Listener, receive_listeners
from shipyard.primitives.routermerge import merge_drain, merge_slices, merge_stats
from shipyard.primitives.routerproto import AsyncRouterClient, RouterError, RouterUnavailable, RoutingTable

log = logging.getLogger("shipyard.control")

TableFn = Callable[[], RoutingTable]
RestartFn = Callable[[str], Awaitable[None]]
# Ops about one environment that every worker serving it must see (or answer, merged).
_FANOUT = ("set_weights", "drain", "undrain", "pause", "resume", "maintenance", "stats", "slices")
_MERGE = {"stats": merge_stats, "slices": merge_slices, "drain": merge_drain}


class RouterLink:
    def __init__(self, paths: Paths, clock: Clock) -> None:
        self.paths = paths
        self.clock = clock
        self.client = AsyncRouterClient(str(paths.router_socket))  # worker 0
        self._clients: dict[int, AsyncRouterClient] = {0: self.client}
        self._workers: dict[str, int] = {}  # env → number of workers its last table asked for
        self._watched: dict[int, asyncio.Task[None]] = {}
        self._on_restart: RestartFn | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, bool] = {}
        self._soon: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._held: dict[Listener, socket.socket] = {}  # worker 0's listening sockets, kept open
        self._addresses: dict[str, set[Listener]] = {}  # env → the addresses its table listens on

    def workers(self, env: str) -> int:
        return self._workers.get(env, 1)

    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """One control-socket request (to every worker of the environment, merged); ``RouterError``
        carries the router's refusal. (``_timeout``: the ``drain`` op has a ``timeout`` field of its own.)"""
        env = fields.get("env")
        n = self.workers(env) if op in _FANOUT and isinstance(env, str) else 1
        if n == 1:
            return await self._call_one(0, op, _timeout, fields)
        replies = await asyncio.gather(*(self._call_one(k, op, _timeout, fields) for k in range(n)))
        merge = _MERGE.get(op)
        return merge(replies) if merge is not None else replies[0]

    async def _call_one(self, worker: int, op: str, timeout: float, fields: dict[str, Any]) -> dict[str, Any]:
        client = self._clients.get(worker)
        name = "router" if worker == 0 else f"router worker {worker}"
        if client is None:
            raise RouterUnavailable(f"the {name} is not running ({op})")
        try:
            return await client.call(op, timeout=timeout, fields=fields)
        except RouterUnavailable as exc:
            raise RouterUnavailable(f"the {name} is not answering ({op}): {exc}") from exc
        except RouterError:
            raise
        except (TimeoutError, OSError) as exc:
            raise RouterUnavailable(f"the {name} is not answering ({op}): {exc}") from exc

    async def inflight(self, env: str, ids: Iterable[str]) -> int:
        """Requests in flight to ``ids``; raises when the router cannot say."""
        wanted = set(ids)
        reply = await self.call("stats", env=env, window_s=1)
        total = 0
        for rel in (reply.get("releases") or {}).values():
            for iid, inst in (rel.get("instances") or {}).items():
                if iid in wanted:
                    total += int(inst.get("inflight", 0))
        return total

    # -- tables ------------------------------------------------------------------------------------
    async def push(self, env: str, table: TableFn) -> None:
        """Send ``table()`` to the environment's workers; concurrent pushes of one environment coalesce."""
        self._pending[env] = True
        lock = self._locks.setdefault(env, asyncio.Lock())
        async with lock:
            if not self._pending.get(env):
                return  # a push that started after us already sent the newest table
            self._pending[env] = False
            current = table()
            n, before = current.settings.workers, self.workers(env)
            for k in range(1, n):
                await self.ensure_running(k)
            wire = current.to_wire()
            await asyncio.gather(*(self._call_one(k, "set_table", 10.0, {"table": wire}) for k in range(n)))
            self._workers[env] = n
            await self._hold(env, current)
            for k in range(n, before):  # fewer workers than before: the extra ones let the port go
                with contextlib.suppress(ShipyardError):
                    await self._call_one(k, "remove_env", 10.0, {"env": env})

    async def _hold(self, env: str, table: RoutingTable) -> None:
        """Keep worker 0's listening sockets for ``table``'s addresses; let go of ones no table uses."""
        mine = {(table.bind, table.port)}
        if table.settings.redirect_http:
            mine.add((table.bind, table.settings.http_port))
        self._addresses[env] = mine
        wanted = set().union(*self._addresses.values())
        for key in [k for k in self._held if k not in wanted]:
            self._held.pop(key).close()
        if wanted <= self._held.keys():
            return
        try:
            got = await asyncio.to_thread(receive_listeners, self.paths.router_socket, 5.0)
        except Exception as exc:  # an older router without hand_over: restarts refuse briefly, as before
            log.warning("could not hold the router's listening sockets: %s", exc)
            return
        for key, sock in got.items():
            if key in wanted and key not in self._held:
                self._held[key] = sock
            else:
                sock.close()

    def held(self) -> list[Listener]:
        return sorted(self._held)

    def push_soon(self, env: str, table: TableFn) -> None:
        """Push from a callback (a readiness flip): in a task, failures logged."""
        task = self._soon.get(env)
        if task is None or task.done():
            self._soon[env] = guarded(self._push_logged(env, table), f"push-{env}")

    async def _push_logged(self, env: str, table: TableFn) -> None:
        await asyncio.sleep(0)  # let the rest of a burst of changes land first
        try:
            await self.push(env, table)
        except ShipyardError as err:
            log.warning("router update for %s failed: %s", env, err)

    # -- the processes -----------------------------------------------------------------------------
    def check_port(self, env: str, port: int, ours: bool) -> None:
        """Refuse early (exit 2) when the port is taken by something other than our router."""
        if ours:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise BadInput(f"port {port} for {env} is in use by another program ({exc.strerror}); "
                               f"free it or change environments.{env}.port") from exc

    async def ensure_running(self, worker: int = 0) -> None:
        """Adopt worker ``worker`` when it answers, else start it (and watch it once ``keep_running`` runs)."""
        sock = self.paths.router_socket_of(worker)
        client = self._clients.setdefault(worker, AsyncRouterClient(str(sock)))
        info = self._pid_info(worker)
        if info and process.is_alive(*info):
            with contextlib.suppress(ShipyardError):
                await client.call("ping", timeout=3)
                self._watch_later(worker)
                return
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        logs = self.paths.router_logs
        held = list(self._held.items()) if worker == 0 else []
        handle = process.spawn([sys.executable, "-m", "shipyard.router", "--socket", str(sock),
                                "--log-dir", str(logs), "--worker", str(worker),
                                *(f"--listener={host}:{port}:{s.fileno()}" for (host, port), s in held)],
                               cwd=self.paths.state, env=router_environment(os.environ),
                               log_path=logs / ("router.log" if worker == 0 else f"router-{worker}.log"),
                               pass_fds=tuple(s.fileno() for _, s in held))
        self.paths.router_pid_of(worker).write_text(json.dumps({"pid": handle.pid,
                                                                "create_time": handle.create_time}))
        deadline = self.clock.monotonic() + 15
        while self.clock.monotonic() < deadline:
            with contextlib.suppress(ShipyardError, TimeoutError, OSError):
                await client.call("ping", timeout=1)
                self._watch_later(worker)
                return
            await self.clock.sleep(0.05)
        raise ShipyardError(f"the router did not start; see {logs / 'router.log'}")

    async def shutdown(self) -> None:
        self._stopping = True
        for k in sorted(self._clients, reverse=True):
            with contextlib.suppress(ShipyardError):
                await self._call_one(k, "shutdown", 5, {})
        self.release_listeners()

    def release_listeners(self) -> None:
        """Close the held sockets (``shipyard down`` stops the router: its ports must be free after)."""
        for sock in self._held.values():
            sock.close()
        self._held.clear()

    async def keep_running(self, on_restart: RestartFn) -> None:
        """Restart a router process whenever it ends (it is the data plane: a dead one refuses every
        connection), then let ``on_restart(why)`` send every table again. Event-driven: a pidfd per worker.
        This task watches worker 0; workers started later get a watcher task of their own."""
        self._on_restart = on_restart
        for k in self._clients:
            if k:
                self._watch_later(k)
        await self._watch(0)

    def _watch_later(self, worker: int) -> None:
        if worker == 0 or self._on_restart is None or self._stopping:
            return
        task = self._watched.get(worker)
        if task is None or task.done():
            self._watched[worker] = guarded(self._watch(worker), f"router-keeper-{worker}")

    async def _watch(self, worker: int) -> None:
        while not self._stopping:
            info = self._pid_info(worker)
            if info is None:
                await self.clock.sleep(0.5)
                continue
            pid, create_time = info
            await process.wait_exit(pid, create_time, clock=self.clock)
            if self._stopping:
                return
            code = process.reap(pid)
            name = "router" if worker == 0 else f"router worker {worker}"
            why = f"the {name} (pid {pid}) {process.describe_exit(code)}"
            log.warning("%s; starting it again", why)
            await self.ensure_running(worker)
            if self._on_restart is not None:
                await self._on_restart(why)

    def _pid_info(self, worker: int = 0) -> tuple[int, float] | None:
        try:
            info = json.loads(self.paths.router_pid_of(worker).read_text())
            return int(info["pid"]), float(info["create_time"])
        except (FileNotFoundError, ValueError, KeyError):
            return None


def router_environment(base: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The router's environment: ours without shipyard's own settings (the master key, database URL)."""
    return {k: v for k, v in base.items() if not k.startswith("SHIPYARD_")}
