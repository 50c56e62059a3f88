"""Dev accessories (``[environments.X.accessories]``): PostgreSQL, Redis, or any command with a port, run
as local processes beside an environment, their URLs put in its configuration.

Each lives in ``.shipyard/accessories/<env>/<name>/``: ``data/`` (kept across ``shipyard down`` / ``up``:
that is the point), ``accessory.json`` (its port — chosen free once and kept, so its URL stays the same —
pid and URL) and ``output.log``. ``postgres``: initdb once, then ``pg_ctl`` (as the ``postgres`` user when
shipyard runs as root: PostgreSQL refuses root); ``redis``: ``redis-server`` with an append-only file in
``data/``; ``command``: ``command`` with ``$PORT`` and ``$DATA_DIR``, ready once ``ready`` exits 0 (or the
port answers). ``urls(env)`` is what ``InstanceFactory`` adds to the environment of instances, release
commands, jobs and one-off runs: ``DATABASE_URL``, ``REDIS_URL``, or ``<NAME>_URL`` (``var`` overrides).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import Clock
from shipyard.primitives.pgcluster import PgCluster, find_pg_bin, free_port
from shipyard.primitives.spec.processes import AccessorySpec

log = logging.getLogger("shipyard.accessories")

READY_TIMEOUT = 30.0
DEFAULT_VARS = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}


def _var(name: str, spec: AccessorySpec) -> str:
    return spec.var or DEFAULT_VARS.get(spec.kind) or f"{name.upper().replace('-', '_')}_URL"


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Accessories:
    def __init__(self, root: Path, clock: Clock) -> None:
        self.root = root  # .shipyard/accessories
        self.clock = clock

    def dir(self, env: str, name: str) -> Path:
        return self.root / env / name

    def _state(self, env: str, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.dir(env, name) / "accessory.json").read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, env: str, name: str, state: dict[str, Any]) -> None:
        path = self.dir(env, name) / "accessory.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def urls(self, env: str) -> dict[str, str]:
        """The variables the environment's accessories set (those started at least once)."""
        out: dict[str, str] = {}
        base = self.root / env
        for d in sorted(base.iterdir()) if base.is_dir() else []:
            st = self._state(env, d.name)
            if st.get("var") and st.get("url"):
                out[str(st["var"])] = str(st["url"])
        return out

    # -- start / stop ----------------------------------------------------------------------------
    async def start(self, env: str, accessories: dict[str, AccessorySpec], names: list[str] | None = None
                    ) -> list[dict[str, Any]]:
        chosen = self._chosen(accessories, names)
        await asyncio.gather(*(self._start_one(env, n, accessories[n]) for n in chosen))
        return self.status(env, {n: accessories[n] for n in chosen})

    def _chosen(self, accessories: dict[str, AccessorySpec], names: list[str] | None) -> list[str]:
        for n in names or []:
            if n not in accessories:
                raise ShipyardError(f"unknown accessory {n!r} (known: {', '.join(sorted(accessories)) or 'none'})")
        return sorted(names or accessories)

    async def _start_one(self, env: str, name: str, spec: AccessorySpec) -> None:
        d = self.dir(env, name)
        (d / "data").mkdir(parents=True, exist_ok=True)
        st = self._state(env, name)
        port = spec.port or int(st.get("port") or 0) or free_port()
        if self._alive(st):
            return
        t0 = self.clock.monotonic()
        if spec.kind == "postgres":
            url = await asyncio.to_thread(self._postgres, d, port)
            st = {"pid": None}
        else:
            cmd, url = self._command(name, spec, d, port)
            env_vars = {**os.environ, "PORT": str(port), "DATA_DIR": str(d / "data")}
            h = process.spawn(cmd, cwd=d, env=env_vars, log_path=d / "output.log")
            st = {"pid": h.pid, "create_time": h.create_time}
            await self._ready(spec, d, port, h)
        self._save(env, name, {**st, "kind": spec.kind, "port": port, "url": url, "var": _var(name, spec),
                               "started_at": self.clock.time(),
                               "start_s": round(self.clock.monotonic() - t0, 3)})

    def _command(self, name: str, spec: AccessorySpec, d: Path, port: int) -> tuple[list[str] | str, str]:
        if spec.kind == "redis":
            exe = shutil.which("redis-server")
            if exe is None:
                raise ShipyardError("redis-server is not installed (scripts/setup-system.sh installs it)")
            return ([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d / "data"),
                     "--appendonly", "yes", "--save", "60 1"], f"redis://127.0.0.1:{port}/0")
        if not spec.command:
            raise ShipyardError(f"accessory {name}: kind = \"command\" needs a command")
        return spec.command, (spec.url or "http://127.0.0.1:{port}").replace("{port}", str(port))

    def _postgres(self, d: Path, port: int) -> str:
        if os.geteuid() == 0:
            _traversable(d)
        cluster = PgCluster(datadir=d / "data", port=port)
        if not (d / "data" / "PG_VERSION").exists():
            shutil.rmtree(d / "data", ignore_errors=True)
            # TCP only: a socket path under a deep project dir passes the 107-byte limit of Unix sockets.
            cluster.init({"unix_socket_directories": "''", "fsync": "on", "full_page_writes": "on"})
        else:  # the port is kept; a config written with another (an older state file) follows it
            conf = d / "data" / "postgresql.conf"
            conf.write_text(conf.read_text() + f"\nport = {port}\n")
        cluster.start()
        return cluster.url

    async def _ready(self, spec: AccessorySpec, d: Path, port: int, h: process.ProcHandle) -> None:
        deadline = self.clock.monotonic() + READY_TIMEOUT
        while self.clock.monotonic() < deadline:
            if not process.is_alive(h.pid, h.create_time):
                raise ShipyardError(f"accessory exited at start; see {d / 'output.log'}")
            if spec.ready:
                ok = (await asyncio.to_thread(subprocess.run, spec.ready, shell=True, cwd=d,
                                              capture_output=True, timeout=10)).returncode == 0
            else:
                ok = _answers(port)
            if ok:
                return
            await asyncio.sleep(0.05)
        raise ShipyardError(f"accessory not ready within {READY_TIMEOUT:g}s; see {d / 'output.log'}")

    def _alive(self, st: dict[str, Any]) -> bool:
        if st.get("kind") == "postgres":
            return bool(st.get("port")) and _answers(int(st["port"]))
        return bool(st.get("pid")) and process.is_alive(int(st["pid"]), float(st.get("create_time") or 0))

    async def stop(self, env: str, accessories: dict[str, AccessorySpec], names: list[str] | None = None
                   ) -> list[dict[str, Any]]:
        """Stop them; their data stays."""
        for n in self._chosen(accessories, names) if accessories else []:
            await self._stop_one(env, n)
        return self.status(env, accessories)

    async def stop_all(self) -> None:
        for env_dir in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            for d in sorted(env_dir.iterdir()):
                await self._stop_one(env_dir.name, d.name)

    async def _stop_one(self, env: str, name: str) -> None:
        d, st = self.dir(env, name), self._state(env, name)
        if st.get("kind") == "postgres" and (d / "data" / "postmaster.pid").exists():
            await asyncio.to_thread(self._pg_stop, d)
        elif st.get("pid") and self._alive(st):
            await process.stop_process_group(int(st["pid"]), float(st["create_time"]), grace=10.0, clock=self.clock)

    @staticmethod
    def _pg_stop(d: Path) -> None:
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        out = subprocess.run([*run_as, str(find_pg_bin() / "pg_ctl"), "-D", str(d / "data"), "-m", "fast", "-w", "-t", "60",
                              "stop"], capture_output=True, text=True, timeout=90, cwd=d)
        if out.returncode != 0:
            log.warning("pg_ctl stop of %s failed: %s", d, (out.stderr or out.stdout).strip()[-500:])
        else:
            log.info("accessory %s stopped (pg_ctl stop)", d.name)

    def status(self, env: str, accessories: dict[str, AccessorySpec]) -> list[dict[str, Any]]:
        out = []
        for name, spec in sorted(accessories.items()):
            st = self._state(env, name)
            out.append({"name": name, "kind": spec.kind, "running": bool(st) and self._alive(st),
                        "port": st.get("port"), "var": _var(name, spec), "url": st.get("url"),
                        "data": str(self.dir(env, name) / "data"), "log": str(self.log(env, name, spec)),
                        "start_s": st.get("start_s")})
        return out

    def log(self, env: str, name: str, spec: AccessorySpec) -> Path:
        d = self.dir(env, name)
        return d / "server.log" if spec.kind == "postgres" else d / "output.log"


def _traversable(d: Path) -> None:
    """PostgreSQL runs as ``postgres`` here: the accessory's directories must let it in (o+x only; files keep
    their own modes), and every directory above must already."""
    d.mkdir(parents=True, exist_ok=True)
    for p in [d, *d.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            if ".shipyard" in p.parts:
                p.chmod(mode | stat.S_IXOTH)
            else:
                raise ShipyardError(f"the postgres accessory runs as the 'postgres' user, which cannot enter {p} "
                                    f"(chmod o+x {p}, or run shipyard as a non-root user)")
