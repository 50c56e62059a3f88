"""The state database (SQLAlchemy 2 Core; SQLite by default, PostgreSQL when configured).

``open_store(url, state_dir)`` picks the database, brings its schema to the newest Alembic revision
and returns a ``Store``. ``open_store_readonly(url, state_dir)`` opens an existing database as it is
(never migrating, never writing) and returns a ``StoreReader``. Records are the frozen dataclasses of
``records``.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import ShipyardError
from shipyard.primitives.store.connect import ENV_VAR, create_engine, resolve_url, safe_url, translated
from shipyard.primitives.store.migrate import current_revision, schema_problem, upgrade_to_head
from shipyard.primitives.store.reading import StoreReader
from shipyard.primitives.store.records import (
    BackupRunRec,
    DeploymentRec,
    DrillRec,
    EnvironmentRec,
    EventRec,
    InstanceRec,
    ReleaseRec,
    StepRec,
)
from shipyard.primitives.store.store import UNSET, Store

__all__ = [
    "ENV_VAR",
    "UNSET",
    "BackupRunRec",
    "DeploymentRec",
    "DrillRec",
    "EnvironmentRec",
    "EventRec",
    "InstanceRec",
    "ReleaseRec",
    "StepRec",
    "Store",
    "StoreReader",
    "open_store",
    "open_store_readonly",
]


def open_store(url: str | None, state_dir: Path) -> Store:
    """Open the state database: ``url``, else $SHIPYARD_DATABASE_URL, else ``state_dir/state.db``.

    Migrates it to the newest schema first (safe when several processes open it at once). An
    unreachable or unusable database is a ShipyardError naming it (never its password); so is an empty
    (0-byte) SQLite file, which is never taken for a new database.
    """
    db_url = resolve_url(url, state_dir)
    engine = create_engine(db_url)
    try:
        with translated(db_url, "opening"):
            upgrade_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, db_url)


def open_store_readonly(url: str | None, state_dir: Path) -> StoreReader:
    """Open an existing state database (found as ``open_store`` finds it) to read only.

    Never migrates, creates or writes anything: connections are read-only (SQLite ``mode=ro``,
    PostgreSQL ``default_transaction_read_only``). A missing or empty database, or one whose schema is
    not exactly this shipyard's (older: not migrated yet; newer: written by a newer shipyard), is a
    ShipyardError saying so and what to do.
    """
    db_url = resolve_url(url, state_dir)
    engine = create_engine(db_url, readonly=True)
    try:
        with translated(db_url, "opening"), engine.connect() as conn, conn.begin():
            problem = schema_problem(current_revision(conn))
        if problem is not None:
            raise ShipyardError(f"state database {safe_url(db_url)}: {problem}")
    except BaseException:
        engine.dispose()
        raise
    return StoreReader(engine, db_url)
