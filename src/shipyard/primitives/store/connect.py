"""Which database the state lives in, engines set up for it, and its errors in words people read."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL."""
    if url.get_backend_name() != "sqlite":
        return None
    assert url.database is not None
    return Path(url.database)


def empty_file_message(path: Path) -> str:
    return (f"state database {path} is empty (0 bytes): it was truncated or never finished, and shipyard "
            "will not start a new state over it. Restore it from a backup, or, if it holds nothing you need, "
            "delete it and run the command again")


def existing_sqlite_file(path: Path) -> None:
    """Refuse a missing or empty database file (a reader must not create one)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ShipyardError(f"no state database at {path}") from None
    except OSError as exc:
        raise ShipyardError(f"cannot read the state database {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise ShipyardError(empty_file_message(path))


def ensure_sqlite_file(path: Path) -> None:
    """Create the database file if there is none; refuse an empty one.

    A new file is made whole (its header written, WAL mode set) under a temporary name and linked into
    place, so shipyard never leaves a 0-byte ``state.db`` behind itself: one found is damage, and opening it
    as a new database would silently throw the state away.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ShipyardError(f"cannot create the state directory {folder}: {exc.strerror or exc}") from exc
    try:
        size: int | None = path.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise ShipyardError(f"cannot read the state database {path}: {exc.strerror or exc}") from exc
    if size == 0:
        raise ShipyardError(empty_file_message(path))
    if size is not None:
        return
    tmp = folder / f".{path.name}.new-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:  # no hard links on this file system
            if not path.exists():
                os.replace(tmp, path)
    except (OSError, sqlite3.Error) as exc:
        raise ShipyardError(f"cannot create the state database {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def create_engine(url: URL, *, readonly: bool = False) -> Engine:
    """An engine for ``url``; ``readonly`` opens connections that cannot write (and create nothing)."""
    path = sqlite_path(url)
    if path is not None:
        if readonly:
            existing_sqlite_file(path)
            url = url.set(database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"})
        else:
            ensure_sqlite_file(path)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect_readonly if readonly else _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    options = {"options": "-c default_transaction_read_only=on"} if readonly else {}
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                            connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S, **options})


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


def _sqlite_on_connect_readonly(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA query_only = ON")
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
