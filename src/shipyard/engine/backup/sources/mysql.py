"""MySQL / MariaDB: ``mariadb-dump --single-transaction`` (one consistent snapshot, InnoDB) streamed into the
pipeline; restore by piping it into ``mariadb``.

Row counts come from the dump itself, so they describe exactly the snapshot: ``--skip-extended-insert``
writes one ``INSERT`` per row, one per line (strings are escaped, so a value never spans lines), and the
lines are counted per table while they stream by. One row per statement is also what makes the dump
deduplicate well from one backup to the next (an edited row changes one line, not a 1 MB statement).
The password goes through ``MYSQL_PWD`` in the child's environment, never the command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from urllib.parse import parse_qs, quote, unquote, urlsplit

from shipyard.engine.backup.sources.base import BLOCK, DumpInfo, RestoreCheck, RestoreTarget, Writable
from shipyard.errors import BadInput, Refused, ShipyardError
from shipyard.primitives.clock import Clock

_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES ", re.M)


@dataclass(frozen=True)
class MysqlUrl:
    user: str
    password: str | None
    host: str
    port: int
    database: str
    socket: str | None

    def args(self) -> list[str]:
        conn = [f"--user={self.user}"]
        conn += [f"--socket={self.socket}"] if self.socket else [f"--host={self.host}", f"--port={self.port}",
                                                                 "--protocol=TCP"]
        return conn

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MYSQL_PWD", None)
        if self.password:
            env["MYSQL_PWD"] = self.password
        return env

    def to_url(self) -> str:
        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        tail = f"?socket={quote(self.socket)}" if self.socket else ""
        return f"mysql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}{tail}"

    def shown(self) -> str:
        return f"{self.socket or f'{self.host}:{self.port}'}/{self.database}"


def parse_url(url: str, what: str) -> MysqlUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise BadInput(f"{what}: expected mysql://user:password@host:port/database, got a {parts.scheme or 'bare'} URL")
    database = unquote(parts.path.strip("/"))
    if not database or "/" in database:
        raise BadInput(f"{what}: the URL must name one database (mysql://user@host/DATABASE)")
    socket = parse_qs(parts.query).get("socket", [""])[0] or None
    return MysqlUrl(unquote(parts.username or "root"), unquote(parts.password) if parts.password else None,
                    parts.hostname or "127.0.0.1", parts.port or 3306, database, socket)


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name.replace("mariadb", "mysql"))
    if not found:
        raise ShipyardError(f"{name} not found; install the MariaDB client (Debian: mariadb-client)")
    return found


def _tail(fh: IO[bytes]) -> str:
    fh.seek(0)
    return fh.read().decode(errors="replace").strip()[-1500:]


def query(u: MysqlUrl, sql: str, database: str | None = None) -> list[list[str]]:
    proc = subprocess.run([_tool("mariadb"), *u.args(), "--batch", "--skip-column-names", "-e", sql,
                           *([database] if database else [])], capture_output=True, env=u.env(), timeout=300)
    if proc.returncode != 0:
        raise ShipyardError(f"MariaDB {u.shown()}: {proc.stderr.decode(errors='replace').strip()[-800:]}")
    return [line.split("\t") for line in proc.stdout.decode().splitlines()]


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class _RowCounter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._carry = b""

    def feed(self, block: bytes) -> None:
        data = self._carry + block
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        for m in _INSERT.finditer(data, 0, cut):
            name = m.group(1).decode().replace("``", "`")
            self.counts[name] = self.counts.get(name, 0) + 1


def dump(name: str, url: str, sink: Writable, clock: Clock) -> DumpInfo:
    u = parse_url(url, f"source {name!r}")
    counter = _RowCounter()
    for (table,) in query(u, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                             "AND table_type = 'BASE TABLE'", u.database):
        counter.counts[table] = 0  # empty tables have no INSERT line
    snapshot_time = clock.time()
    # --no-autocommit: one transaction per table on restore, not one commit (and fsync) per row.
    args = [_tool("mariadb-dump"), *u.args(), "--single-transaction", "--skip-extended-insert", "--no-autocommit",
            "--routines",
            "--triggers", "--events", "--hex-blob", "--default-character-set=utf8mb4", "--skip-dump-date",
            u.database]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=u.env())
        assert proc.stdout is not None
        try:
            while block := proc.stdout.read(BLOCK):
                counter.feed(block)
                sink.write(block)
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if rc != 0:
            raise ShipyardError(f"source {name!r}: mariadb-dump failed (exit {rc}): {_tail(err)}")
    version = query(u, "SELECT VERSION()")[0][0]
    return DumpInfo(snapshot_time, {"tables": counter.counts, "server_version": version,
                                    "format": "mariadb-dump --single-transaction"},
                    {"mariadb-dump": subprocess.run([args[0], "--version"], capture_output=True, text=True,
                                                    timeout=30).stdout.strip()})


def restore(name: str, url: str, blocks: Iterator[bytes], target: RestoreTarget) -> MysqlUrl:
    """Into ``target.url`` (created when missing) or, with ``target.replace``, over the source's database."""
    u = parse_url(target.url or url, "restore target")
    if target.url is None and not target.replace:
        raise Refused(f"restoring over the original database of source {name!r} needs --yes")
    query(u, f"CREATE DATABASE IF NOT EXISTS {_ident(u.database)}")
    [[tables]] = query(u, "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()",
                       u.database)
    if int(tables) and not target.replace:
        raise Refused(f"database {u.database!r} already holds tables; pass --yes to restore over it "
                      "(the dumped tables are dropped and recreated)")
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([_tool("mariadb"), *u.args(), "--binary-mode", u.database], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=err, env=u.env())
        assert proc.stdin is not None
        try:
            for block in blocks:
                proc.stdin.write(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
        if rc != 0:
            raise ShipyardError(f"restore into MariaDB {u.shown()} failed (exit {rc}): {_tail(err)}")
    return u


def check(u: MysqlUrl, expected: dict[str, int]) -> list[RestoreCheck]:
    checks: list[RestoreCheck] = []
    for table, rows in sorted(expected.items()):
        try:
            [[have]] = query(u, f"SELECT count(*) FROM {_ident(table)}", u.database)
            checks.append(RestoreCheck(f"rows {table}", int(have) == rows, f"{have} rows, manifest {rows}"))
        except ShipyardError as exc:
            checks.append(RestoreCheck(f"rows {table}", False, str(exc)))
    return checks


def drop(u: MysqlUrl) -> None:
    query(u, f"DROP DATABASE IF EXISTS {_ident(u.database)}")
