"""The router process: environments, the once-a-second sweep, control operations, graceful shutdown."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import monotonic

from shipyard.primitives.listenerpass import send_listeners
from shipyard.primitives.metrics import RETENTION_S, SCHEME, Series, WindowStats, slice_json, window_of
from shipyard.primitives.routerproto import RoutingTable, TableError, parse, parse_weights
from shipyard.router import native
from shipyard.router.accesslog import AccessLog
from shipyard.router.env import EnvRuntime
from shipyard.router.listeners import INHERITED
from shipyard.router.proxy import D_HEAD

HEAD_WAIT_S = 1.0  # shutdown: how long a fresh connection's first request is waited for

INHERITED_KEEP_S = 60.0

# A control message as decoded from JSON, and the fields of a reply (JSON-serialisable values).
Message = dict[str, object]
Reply = dict[str, object]
_WILDCARDS = frozenset({"0.0.0.0", "::"})


def _number(msg: Message, key: str, default: float) -> float:
    value = msg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TableError(f"{msg.get('op')}: '{key}' must be a number of seconds, got {value!r}")
    return float(value)


class Router:
    def __init__(self, loop: asyncio.AbstractEventLoop, log_dir: Path | None = None, worker: int = 0) -> None:
        self.loop = loop
        self.envs: dict[str, EnvRuntime] = {}
        self.worker = worker
        name = "access.log" if worker == 0 else f"access-{worker}.log"  # one writer per file
        self.access_log = AccessLog(log_dir / name) if log_dir is not None else None
        self.wall_off = time.time() - monotonic()
        self._sweeper: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()
        self._stopping = False
        self._servers: list[asyncio.AbstractServer] = []

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._sweeper = asyncio.ensure_future(self._sweep_loop())
        if self.access_log is not None:
            self.access_log.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self.loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.shutdown()))
            except (NotImplementedError, RuntimeError):
                pass

    def add_server(self, server: asyncio.AbstractServer) -> None:
        self._servers.append(server)

    async def _sweep_loop(self) -> None:
        started = monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = monotonic()
            if INHERITED and now - started > INHERITED_KEEP_S:  # handed over, but no table asked for them
                for sock in INHERITED.values():
                    sock.close()
                INHERITED.clear()
            self.wall_off = time.time() - now
            for env in list(self.envs.values()):
                env.sweep(now)

    def wall(self, mono: float) -> float:
        return mono + self.wall_off

    def wall_sec(self, mono: float) -> int:
        return int(mono + self.wall_off)

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace``), then stop."""
        if self._stopping:
            return
        self._stopping = True
        for env in self.envs.values():
            await env.close()
        for server in self._servers:
            server.close()
        start = monotonic()
        deadline = start + grace
        # In flight: requests at an upstream, and, for a moment, connections accepted whose first request head
        # has not come yet: a client that connected just before the listener closed sends its request within
        # milliseconds, and closing it would fail that request (clients retry only reused connections). Not
        # longer than HEAD_WAIT_S: a browser's speculative connection may never send one. Idle keep-alive
        # connections are closed at once; clients retry those.
        while monotonic() < deadline and self._in_flight(monotonic() - start < HEAD_WAIT_S):
            await asyncio.sleep(0.05)
        for env in self.envs.values():
            for conn in list(env.conns):
                conn.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.access_log is not None:
            await self.access_log.close()
        self.stopped.set()

    def _in_flight(self, heads_too: bool) -> bool:
        envs = list(self.envs.values())
        return (any(inst.series.inflight for env in envs for inst in env.all_instances())
                or heads_too and any(c.dkind == D_HEAD and not c.closed for env in envs for c in env.conns))

    # -- queries -------------------------------------------------------------------------------------
    def all_series(self) -> list[Series]:
        out = []
        for env in self.envs.values():
            out += [inst.series for inst in env.all_instances()]
        return out

    def _env(self, msg: Message) -> EnvRuntime:
        name = msg.get("env")
        env = self.envs.get(name) if isinstance(name, str) else None
        if env is None:
            known = ", ".join(sorted(self.envs)) or "none"
            raise TableError(f"unknown environment {name!r} (known: {known})")
        return env

    # -- control operations (each returns the reply fields; errors raise TableError) --------------------
    async def op_ping(self, msg: Message) -> Reply:
        return {"pid": os.getpid(), "envs": sorted(self.envs), "worker": self.worker,
                "native": bool(native.state["native"])}

    def _check_addresses(self, table: RoutingTable) -> None:
        """SO_REUSEPORT lets two of our own listeners share a port, which would split its connections
        between environments: refuse a table whose listeners overlap another environment's."""
        s = table.settings
        mine = [(table.bind, table.port, "port")]
        if s.redirect_http:
            mine.append((table.bind, s.http_port, "http_port"))
        for other in self.envs.values():
            if other.name == table.env:
                continue
            theirs = [(other.bind, other.port), *([other.redirect_key] if other.redirect_key else [])]
            for bind, port, what in mine:
                for obind, oport in theirs:
                    if port == oport and (bind == obind or _WILDCARDS & {bind, obind}):
                        raise TableError(f"table.{'settings.' if what == 'http_port' else ''}{what}: "
                                         f"{port} is already used by environment {other.name!r}")

    async def op_set_table(self, msg: Message) -> Reply:
        table = parse(msg.get("table"))
        self._check_addresses(table)
        env = self.envs.get(table.env)
        if env is None:
            env = EnvRuntime(self, table.env)
            try:
                await env.apply(table)  # raises before the env is registered if the port cannot be bound
            except TableError:
                await env.close()  # the redirect listener's port may be the one that failed
                raise
            self.envs[table.env] = env
        else:
            await env.apply(table)
        return {"env": table.env, "port": env.port}

    async def op_get_table(self, msg: Message) -> Reply:
        env = self._env(msg)
        assert env.table is not None
        table = env.table.to_wire()
        table["weights"] = dict(env.weights)
        return {"table": table, "draining": sorted(env.draining), "paused": env.paused is not None,
                "maintenance": env.maintenance is not None}

    async def op_set_weights(self, msg: Message) -> Reply:
        env = self._env(msg)
        assert env.table is not None
        weights = parse_weights(msg.get("weights"), env.table.releases())
        env.set_weights(weights)
        return {"weights": env.weights}

    async def op_drain(self, msg: Message) -> Reply:
        env = self._env(msg)
        release = msg.get("release")
        if not isinstance(release, str):
            raise TableError("drain: 'release' must be a string")
        instance = msg.get("instance")
        instance = None if instance is None else str(instance)
        timeout = _number(msg, "timeout", 30.0)
        env.start_drain(release, instance)
        deadline = monotonic() + timeout
        n = env.inflight(release, instance)
        while n and monotonic() < deadline:
            await asyncio.sleep(0.02)
            n = env.inflight(release, instance)
        env.finish_drain(release, instance)
        return {"drained": n == 0, "inflight": n}

    async def op_undrain(self, msg: Message) -> Reply:
        env = self._env(msg)
        release = msg.get("release")
        env.draining.discard(str(release))
        for inst in env.instances.values():
            if inst.release == release:
                inst.draining = False
        env._rebuild()
        return {}

    async def op_pause(self, msg: Message) -> Reply:
        env = self._env(msg)
        env.pause(_number(msg, "max_pause", 0.0) if msg.get("max_pause") is not None else None)
        return {"max_pause": env.max_pause}

    async def op_resume(self, msg: Message) -> Reply:
        self._env(msg).resume()
        return {}

    async def op_maintenance(self, msg: Message) -> Reply:
        env = self._env(msg)
        allow = msg.get("allow") or []
        if not isinstance(allow, list) or not all(isinstance(n, str) for n in allow):
            raise TableError("maintenance: 'allow' must be a list of networks")
        try:
            for net in allow:
                ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise TableError(f"maintenance: allow: {exc}") from None
        env.set_maintenance(bool(msg.get("on", True)), str(msg.get("message") or ""), tuple(allow),
                            int(_number(msg, "retry_after", 300.0)))
        return {"maintenance": env.maintenance is not None}

    async def op_remove_env(self, msg: Message) -> Reply:
        env = self._env(msg)
        await env.close()
        del self.envs[env.name]
        return {}

    async def op_stats(self, msg: Message) -> Reply:
        env = self._env(msg)
        window_s = _number(msg, "window_s", 60.0)
        if not 0 < window_s <= 900:
            raise TableError(f"stats: window_s must be in (0, 900], got {window_s}")
        now = monotonic()
        sec = self.wall_sec(now)
        releases: dict[str, dict[str, object]] = {}
        per_instance: dict[str, dict[str, object]] = {}
        rel_totals: dict[str, WindowStats] = {}
        table = env.table
        roles = {p.release: p.role for p in table.pools} if table is not None else {}
        for inst in env.all_instances():
            w = window_of(inst.series, sec, window_s)
            if inst.retired and w.requests == 0 and w.inflight == 0:
                continue
            insts = per_instance.setdefault(inst.release, {})
            releases.setdefault(inst.release, {"instances": insts})
            insts[inst.id] = {**w.to_json(), "host": inst.host, "port": inst.port,
                                         "ready": inst.ready, "retired": inst.retired, "draining": inst.draining}
            rel_totals.setdefault(inst.release, WindowStats(window_s=window_s)).add(w)
        for name, rel in releases.items():
            rel.update(rel_totals[name].to_json())
            rel["role"] = roles.get(name)
            rel["weight"] = env.weights.get(name, 0.0)
            rel["draining"] = name in env.draining
        return {
            "env": env.name,
            "window_s": window_s,
            "time": self.wall(now),
            "histogram_scheme": SCHEME,
            "releases": releases,
            "unrouted": window_of(env.unrouted, sec, window_s).to_json(),
            "connections": len(env.conns),
            "paused": env.paused is not None,
            "maintenance": env.maintenance is not None,
        }

    async def op_slices(self, msg: Message) -> Reply:
        """Finished whole seconds ``[since, now_sec)`` per instance — what the control plane's collector
        turns into analysis samples. Instances with no request in a second send no slice for it."""
        env = self._env(msg)
        now_sec = self.wall_sec(monotonic())
        since = msg.get("since")
        if not isinstance(since, int) or isinstance(since, bool):
            since = now_sec - 1
        since = max(since, now_sec - RETENTION_S)
        table = env.table
        roles = {p.release: p.role for p in table.pools} if table is not None else {}
        instances = []
        for inst in env.all_instances():
            slices = inst.series.finished_between(since, now_sec)
            if inst.retired and not slices:
                continue
            instances.append({"id": inst.id, "release": inst.release, "ready": inst.ready, "retired": inst.retired,
                              "slices": [slice_json(s) for s in slices]})
        return {"env": env.name, "since": since, "now_sec": now_sec, "histogram_scheme": SCHEME,
                "roles": roles, "weights": dict(env.weights), "instances": instances}

    async def op_shutdown(self, msg: Message) -> Reply:
        grace = _number(msg, "grace", 30.0)
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.shutdown(grace)))
        return {}

    async def op_hand_over(self, msg: Message) -> Reply:
        """Send our listening sockets to a replacement router (``--replace``) waiting on ``to``."""
        to = msg.get("to")
        if not isinstance(to, str) or not to:
            raise TableError("hand_over: 'to' must be the path of a unix socket")
        listening: list[tuple[str, int, int]] = []
        for env in self.envs.values():
            for server in (env.server, env.redirect):
                for sock in getattr(server, "sockets", None) or ():  # asyncio.Server's, uvloop's alike
                    host, port = sock.getsockname()[:2]
                    listening.append((str(host), int(port), sock.fileno()))
        await asyncio.get_running_loop().run_in_executor(None, send_listeners, to, listening)
        return {"listeners": len(listening)}

    OPS = ("ping", "hand_over", "set_table", "get_table", "set_weights", "drain", "undrain", "pause", "resume", "maintenance",
           "remove_env", "stats", "slices", "shutdown")

    async def handle(self, msg: object) -> Reply:
        op = msg.get("op") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or not isinstance(op, str):
            return {"ok": False, "error": "expected a JSON object with an 'op'"}
        if op not in self.OPS:
            return {"ok": False, "error": f"unknown op {op!r} (known: {', '.join(self.OPS)})"}
        handler: Callable[[Message], Awaitable[Reply]] = getattr(self, f"op_{op}")
        try:
            reply = await handler(msg)
        except (TableError, ValueError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, **reply}
