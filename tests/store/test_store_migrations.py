"""Migrations: at head on open, idempotent, matching schema.py, safe when processes race on a fresh DB."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard.primitives.store import Store, open_store
from shipyard.primitives.store import schema as tables
from shipyard.primitives.store.migrate import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    VERSION_TABLE,
    _run_alembic,
    current_revision,
    upgrade_to_head,
)

from .workerproc import Worker


def engine_of(store: Store) -> sa.Engine:
    return store._engine


def test_head_constant_is_alembics_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_open_migrates_to_head(store: Store) -> None:
    with engine_of(store).connect() as conn:
        assert current_revision(conn) == HEAD_REVISION
        names = set(sa.inspect(conn).get_table_names())
    assert set(tables.metadata.tables) | {VERSION_TABLE} == names


def test_schema_module_matches_migrations(store: Store) -> None:
    with engine_of(store).connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []


def test_migrations_idempotent(store: Store, open_another: Callable[[], Store]) -> None:
    store.upsert_environment("staging", current_release="r1", updated_at=1.0)
    # Run Alembic itself again (past the fast path) and through open_store: nothing changes.
    with engine_of(store).connect() as conn, conn.begin():
        _run_alembic(conn, "head")
    upgrade_to_head(engine_of(store))
    again = open_another()
    with engine_of(again).connect() as conn:
        assert current_revision(conn) == HEAD_REVISION
        assert conn.execute(sa.text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar_one() == 1
    env = again.get_environment("staging")
    assert env is not None and env.current_release == "r1"


def test_processes_opening_a_fresh_database_at_once(workers: Callable[..., Worker], state_dir: Path) -> None:
    openers = [workers("open") for _ in range(4)]
    for w in openers:
        w.wait_ready()
    for w in openers:
        w.go()
    assert [w.result() for w in openers] == [{"revision": HEAD_REVISION}] * 4
    for w in openers:
        assert w.proc.wait(timeout=60) == 0, w.stderr()


def test_sqlite_settings(tmp_path: Path) -> None:
    store = open_store(None, tmp_path / "state")
    try:
        with engine_of(store).connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "foreign_keys", "busy_timeout")}
    finally:
        store.close()
    assert pragma["journal_mode"] == "wal"
    assert pragma["foreign_keys"] == 1
    assert int(pragma["busy_timeout"]) >= 10_000  # type: ignore[arg-type]
    assert (tmp_path / "state" / "state.db").is_file()


def test_up_to_date_database_opens_without_alembic(tmp_path: Path) -> None:
    open_store(None, tmp_path).close()
    code = ("import sys; from pathlib import Path; from shipyard.primitives.store import open_store; "
            f"open_store(None, Path({str(tmp_path)!r})).close(); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
