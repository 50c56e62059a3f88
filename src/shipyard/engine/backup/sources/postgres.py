"""PostgreSQL: ``pg_dump -Fc -Z0`` streamed into the pipeline (zstd compresses), ``pg_restore`` from it.

The dump runs in a snapshot exported by our own REPEATABLE READ transaction, so the per-table row counts
recorded in the manifest (counted in that transaction, while pg_dump streams) describe exactly the data in
the dump. ``pg_dump -j`` is not used: it needs the directory format, i.e. the dump in clear on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shipyard.engine.backup.sources.base import BLOCK, DumpInfo, RestoreCheck, RestoreTarget, Writable
from shipyard.errors import BadInput, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.backup import PostgresSource

_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ShipyardError(f"{name} not found; install the PostgreSQL client (Debian: postgresql-client)")
    return found


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password plus the environment carrying it (keeps it out of ``ps``)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise BadInput(f"invalid PostgreSQL URL: {exc}") from exc
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def connect(url: str, what: str, **kw: Any) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=15, **kw)
    except psycopg.Error as exc:
        raise ShipyardError(f"{what}: cannot connect to PostgreSQL: {str(exc).strip()}") from exc


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = conn.execute(q).fetchone()
        out[f"{schema}.{table}"] = int(row[0]) if row else 0
    return out


def _stderr_tail(fh: IO[bytes]) -> str:
    fh.seek(0)
    return fh.read().decode(errors="replace").strip()[-1500:]


def tool_version(name: str) -> str:
    out = subprocess.run([_tool(name), "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def dump(src: PostgresSource, sink: Writable, clock: Clock) -> DumpInfo:
    what = f"source {src.name!r}"
    conninfo, env = split_url(src.url)
    with connect(src.url, what) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot_time = clock.time()
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version')").fetchone()
        assert row is not None
        snapshot, server_version = str(row[0]), str(row[1])
        counted: dict[str, int] = {}
        failed: list[BaseException] = []

        def count() -> None:
            try:
                counted.update(_counts(conn))
            except BaseException as exc:  # reported after the dump
                failed.append(exc)

        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([_tool("pg_dump"), "-Fc", "-Z0", "--no-password", f"--snapshot={snapshot}",
                                     "-d", conninfo], stdout=subprocess.PIPE, stderr=err, env=env)
            counter = threading.Thread(target=count, name="pg-row-counts", daemon=True)
            counter.start()
            try:
                assert proc.stdout is not None
                while block := proc.stdout.read(BLOCK):
                    sink.write(block)
                rc = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                counter.join()
            if rc != 0:
                raise ShipyardError(f"{what}: pg_dump failed (exit {rc}): {_stderr_tail(err)}")
        if failed:
            raise ShipyardError(f"{what}: counting rows failed: {failed[0]}") from failed[0]
        conn.rollback()
    meta = {"tables": counted, "server_version": server_version, "format": "pg_dump custom (-Fc -Z0)"}
    return DumpInfo(snapshot_time, meta, {"pg_dump": tool_version("pg_dump")})


def _ensure_database(url: str, replace: bool) -> bool:
    """Creates the target database when missing; True when it already holds tables (restore over it)."""
    params = conninfo_to_dict(url)
    dbname = str(params.get("dbname") or params.get("user") or "postgres")
    admin = make_conninfo("", **{**params, "dbname": "postgres"})
    with connect(admin, f"restore target {dbname!r}", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            return False
    with connect(url, f"restore target {dbname!r}") as conn:
        has_tables = conn.execute(_TABLES).fetchone() is not None
    if has_tables and not replace:
        raise Refused(f"database {dbname!r} already holds tables; pass --yes to restore over it "
                      "(its objects are dropped and recreated)")
    return has_tables


def restore(src: PostgresSource, blocks: Iterator[bytes], target: RestoreTarget) -> None:
    """Restores into ``target.url`` (created if missing) or, with ``target.replace``, over the source."""
    url = target.url or src.url
    if target.url is None and not target.replace:
        raise Refused(f"restoring over the original database of source {src.name!r} needs --yes")
    occupied = _ensure_database(url, target.replace)
    conninfo, env = split_url(url)
    args = [_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-password", "-d", conninfo]
    if target.url is not None:
        args += ["--no-owner", "--no-acl"]  # a new target need not have the source's roles
    if occupied:
        args += ["--clean", "--if-exists"]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env)
        assert proc.stdin is not None
        try:
            for block in blocks:
                proc.stdin.write(block)
            proc.stdin.close()
        except BrokenPipeError:
            proc.wait()
        except BaseException:
            # Killing pg_restore before it commits rolls its single transaction back: nothing restored.
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
        if rc != 0:
            raise ShipyardError(f"pg_restore into {url.rsplit('@', 1)[-1]} failed (exit {rc}): {_stderr_tail(err)}")


def check(src: PostgresSource, url: str, expected: dict[str, int], *, user_sql: bool) -> list[RestoreCheck]:
    """Row counts per table against the manifest; with ``user_sql`` the source's ``check_sql`` too."""
    checks: list[RestoreCheck] = []
    with connect(url, "restored database", autocommit=True) as conn:
        got = _counts(conn) if expected else {}
        for table, rows in sorted(expected.items()):
            have = got.get(table)
            checks.append(RestoreCheck(f"rows {table}", have == rows,
                                f"{have} rows, manifest {rows}" if have is not None else "table missing"))
        if user_sql:
            for stmt in src.check_sql:
                try:
                    cur = conn.execute(stmt)
                    row = cur.fetchone() if cur.description else None
                    value = None if row is None else row[0]
                    ok = row is None or bool(value)
                    checks.append(RestoreCheck(f"sql {stmt}", ok, "" if ok else f"returned {value!r}"))
                except psycopg.Error as exc:
                    checks.append(RestoreCheck(f"sql {stmt}", False, str(exc).strip()))
    return checks
