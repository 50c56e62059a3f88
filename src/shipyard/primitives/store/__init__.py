"""The state database (SQLAlchemy 2 Core; SQLite by default, PostgreSQL when configured).

``open_store(url, state_dir)`` picks the database, brings its schema to the newest Alembic revision
and returns a ``Store``. Records are the frozen dataclasses of ``records``.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.primitives.store.connect import ENV_VAR, create_engine, resolve_url, translated
from shipyard.primitives.store.migrate import upgrade_to_head
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
    "open_store",
]


def open_store(url: str | None, state_dir: Path) -> Store:
    """Open the state database: ``url``, else $SHIPYARD_DATABASE_URL, else ``state_dir/state.db``.

    Migrates it to the newest schema first (safe when several processes open it at once). An
    unreachable or unusable database is a ShipyardError naming it (never its password).
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
