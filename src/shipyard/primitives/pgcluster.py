"""Throwaway PostgreSQL clusters: initdb + pg_ctl on a free loopback port.

Used by backup drills (restore into a scratch cluster) and by the test suite (a real server it starts
itself). Needs the PostgreSQL server binaries (Debian: ``postgresql``); ``find_pg_bin`` locates them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from shipyard.errors import ShipyardError


def find_pg_bin(tool: str = "pg_ctl") -> Path:
    """Directory holding the server binaries (initdb, pg_ctl, postgres)."""
    found = shutil.which(tool)
    if found:
        return Path(os.path.realpath(found)).parent
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        versions = sorted((p for p in base.iterdir() if (p / "bin" / tool).exists()),
                          key=lambda p: int(p.name) if p.name.isdigit() else 0)
        if versions:
            return versions[-1] / "bin"
    raise ShipyardError(f"PostgreSQL server binaries not found ({tool}); install the 'postgresql' package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """A private cluster in ``datadir`` listening on 127.0.0.1:``port`` (trust auth, user ``postgres``).

    Runs as the current user; when that is root, the server runs as the ``postgres`` system user
    because PostgreSQL refuses to start as root.
    """

    def __init__(self, datadir: Path | None = None, port: int | None = None, user: str = "postgres") -> None:
        self._own_tmp = datadir is None
        self.base = Path(tempfile.mkdtemp(prefix="shipyard-pg-")) if datadir is None else datadir.parent
        self.datadir = datadir or self.base / "data"
        self.port = port or free_port()
        self.user = user
        self.bindir = find_pg_bin()
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            self._run_as = ["runuser", "-u", "postgres", "--"]
            try:
                shutil.chown(self.base, "postgres", "postgres")
            except LookupError as exc:
                raise ShipyardError("PostgreSQL refuses to run as root and there is no 'postgres' user; "
                                    "install the 'postgresql' package (scripts/setup-system.sh does)") from exc

    @property
    def url(self) -> str:
        return self.dsn("postgres")

    def dsn(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._run_as, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.base))
        if proc.returncode != 0:
            raise ShipyardError(f"{Path(args[0]).name} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
        return proc

    def init(self, extra_conf: dict[str, str] | None = None) -> PgCluster:
        self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user, "-A", "trust",
                   "-E", "UTF8", "--no-sync"])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        conf.update(extra_conf or {})
        with open(self.datadir / "postgresql.conf", "a") as fh:
            fh.write("\n# shipyard scratch cluster\n")
            for k, v in conf.items():
                fh.write(f"{k} = {v}\n")
        return self

    def start(self) -> PgCluster:
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.base / "server.log"),
                   "-w", "-t", "60", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run([*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                            "-w", "-t", "60", "stop"], capture_output=True, timeout=90, cwd=str(self.base))

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL through psql (tuples only, unaligned) and return its output."""
        psql = shutil.which("psql") or str(self.bindir / "psql")
        proc = subprocess.run([psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(dbname),
                               "-c", sql], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ShipyardError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            if self._own_tmp:
                shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.init().start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
