"""Bring a state database to the newest schema (Alembic, run from code; no alembic.ini).

Safe when several processes open a fresh database at once: the whole upgrade runs in one transaction
that first takes a database-wide lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so a
second process waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shipyard.errors import ShipyardError
from shipyard.primitives.store.connect import WRITE_OPTION, safe_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "shipyard_alembic_version"
# The newest revision in migrations/versions (a test checks it against Alembic's own head); knowing it
# lets an up-to-date database open without importing Alembic.
HEAD_REVISION = "0012"
# Every revision, oldest first (a test checks them against Alembic's history); the last is the head.
REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0009", "0012")
# pg_advisory_xact_lock key: any constant, shared by every shipyard process on the server.
_PG_LOCK_KEY = 0x5348_4950  # "SHIP"


def current_revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def schema_problem(revision: str | None) -> str | None:
    """Why a database at ``revision`` cannot be read as it is by this shipyard; None at the head."""
    if revision == HEAD_REVISION:
        return None
    if revision is None:
        return "it has no shipyard schema (shipyard never opened it, or it is not a state database)"
    if revision in REVISIONS:
        return (f"its schema is revision {revision}, older than this shipyard's {HEAD_REVISION}; a read-only "
                "view never migrates: open it read-write once (e.g. `shipyard up`) and try again")
    return newer_message(revision)


def newer_message(revision: str) -> str:
    return (f"its schema is revision {revision}, which this shipyard does not know (its newest is "
            f"{HEAD_REVISION}): it was written by a newer shipyard; upgrade shipyard to use it")


def upgrade_to_head(engine: Engine) -> None:
    with engine.connect() as conn:
        with conn.begin():
            revision = current_revision(conn)
            if revision == HEAD_REVISION:
                return
            if revision is not None and revision not in REVISIONS:
                raise ShipyardError(f"state database {safe_url(engine.url)}: {newer_message(revision)}")
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            _run_alembic(conn, "head")


def _run_alembic(conn: sa.Connection, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py runs the migrations on this connection, inside the caller's transaction.
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, target)
