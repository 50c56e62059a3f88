"""Which database the state lives in, engines set up for it, and its errors in words people read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from shipyard.errors import BadInput, ShipyardError

ENV_VAR = "SHIPYARD_DATABASE_URL"
SQLITE_FILE = "state.db"
# Generous: the CLI and the control plane share the file, and the machine may be busy.
SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10

# Execution option asking for BEGIN IMMEDIATE on SQLite: a write transaction takes the write lock
# up front, so it waits (busy_timeout) instead of failing when it later upgrades from reading.
WRITE_OPTION = "shipyard_write"


def resolve_url(url: str | None, state_dir: Path) -> URL:
    """The SQLAlchemy URL of the state database: ``url``, else $SHIPYARD_DATABASE_URL, else SQLite."""
    raw = url or os.environ.get(ENV_VAR) or ""
    if not raw.strip():
        return URL.create("sqlite", database=str(state_dir / SQLITE_FILE))
    try:
        parsed = make_url(raw.strip())
    except sa.exc.ArgumentError as exc:
        raise BadInput(f"{ENV_VAR}: not a database URL") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise BadInput(f"{ENV_VAR}: driver '{driver}' is not supported; use postgresql://")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise BadInput(f"{ENV_VAR}: SQLite needs a file path (sqlite:////path/to/state.db)")
        return parsed.set(drivername="sqlite")
    raise BadInput(f"{ENV_VAR}: unsupported database '{backend}' (use postgresql://... or sqlite:///...)")


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        folder = Path(url.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ShipyardError(f"cannot create the state directory {folder}: {exc.strerror or exc}") from exc
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (it would not BEGIN before SELECT or DDL);
    # _sqlite_on_begin emits BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def describe(exc: BaseException, url: URL) -> str:
    """One line about a driver error, without the URL's password."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split()) or type(orig).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    return text[:300]


@contextmanager
def translated(url: URL, doing: str) -> Iterator[None]:
    """Driver failures (unreachable server, locked file, disk full) as ShipyardError."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError) as exc:
        if isinstance(exc, sa.exc.IntegrityError):
            raise
        raise ShipyardError(f"state database {safe_url(url)}: {doing} failed: {describe(exc, url)}") from exc
