"""The control plane's link to its router process: calls, in-flight counts, port checks, table pushes.

Router refusals are raised (``RouterError``), never turned into values a caller could misread: a
refused ``stats`` call is not "0 requests in flight". Table pushes are coalesced per environment: a
burst of readiness flips becomes one push of the newest table.
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
from shipyard.primitives.routerproto import AsyncRouterClient, RouterError, RouterUnavailable, RoutingTable

log = logging.getLogger("shipyard.control")

TableFn = Callable[[], RoutingTable]


class RouterLink:
    def __init__(self, paths: Paths, clock: Clock) -> None:
        self.paths = paths
        self.clock = clock
        self.client = AsyncRouterClient(str(paths.router_socket))
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, bool] = {}
        self._soon: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """One control-socket request; ``RouterError`` carries the router's refusal. (``_timeout``: the
        ``drain`` op has a ``timeout`` field of its own.)"""
        try:
            return await self.client.call(op, timeout=_timeout, fields=fields)
        except RouterUnavailable as exc:
            raise RouterUnavailable(f"the router is not answering ({op}): {exc}") from exc
        except RouterError:
            raise
        except (TimeoutError, OSError) as exc:
            raise RouterUnavailable(f"the router is not answering ({op}): {exc}") from exc

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
        """Send ``table()`` to the router; concurrent pushes of one environment coalesce into one."""
        self._pending[env] = True
        lock = self._locks.setdefault(env, asyncio.Lock())
        async with lock:
            if not self._pending.get(env):
                return  # a push that started after us already sent the newest table
            self._pending[env] = False
            await self.call("set_table", table=table().to_wire())

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

    # -- the process -------------------------------------------------------------------------------
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

    async def ensure_running(self) -> None:
        info = self._pid_info()
        if info and process.is_alive(*info):
            with contextlib.suppress(ShipyardError):
                await self.call("ping", 3)
                return
        with contextlib.suppress(FileNotFoundError):
            self.paths.router_socket.unlink()
        handle = process.spawn([sys.executable, "-m", "shipyard.router", "--socket", str(self.paths.router_socket),
                                "--log-dir", str(self.paths.router_logs)],
                               cwd=self.paths.state, env=router_environment(os.environ),
                               log_path=self.paths.router_logs / "router.log")
        self.paths.router_pid.write_text(json.dumps({"pid": handle.pid, "create_time": handle.create_time}))
        deadline = self.clock.monotonic() + 15
        while self.clock.monotonic() < deadline:
            with contextlib.suppress(ShipyardError):
                await self.call("ping", 1)
                return
            await self.clock.sleep(0.05)
        raise ShipyardError(f"the router did not start; see {self.paths.router_logs / 'router.log'}")

    async def shutdown(self) -> None:
        self._stopping = True
        with contextlib.suppress(ShipyardError):
            await self.call("shutdown", 5)

    async def keep_running(self, on_restart: Callable[[str], Awaitable[None]]) -> None:
        """Restart the router whenever its process ends (it is the data plane: a dead one refuses every
        connection), then let ``on_restart(why)`` send every table again. Event-driven: a pidfd."""
        while not self._stopping:
            info = self._pid_info()
            if info is None:
                await self.clock.sleep(0.5)
                continue
            pid, create_time = info
            await process.wait_exit(pid, create_time, clock=self.clock)
            if self._stopping:
                return
            code = process.reap(pid)
            why = f"the router (pid {pid}) {process.describe_exit(code)}"
            log.warning("%s; starting it again", why)
            await self.ensure_running()
            await on_restart(why)

    def _pid_info(self) -> tuple[int, float] | None:
        try:
            info = json.loads(self.paths.router_pid.read_text())
            return int(info["pid"]), float(info["create_time"])
        except (FileNotFoundError, ValueError, KeyError):
            return None


def router_environment(base: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The router's environment: ours without shipyard's own settings (the master key, database URL)."""
    return {k: v for k, v in base.items() if not k.startswith("SHIPYARD_")}
