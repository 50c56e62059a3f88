"""The read-only view (never migrates, never writes) and the refusal of an empty state.db."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from shipyard.errors import ShipyardError
from shipyard.primitives.store import Store, StoreReader, open_store, open_store_readonly
from shipyard.primitives.store import migrate as migrate_mod
from shipyard.primitives.store.migrate import HEAD_REVISION, MIGRATIONS_DIR, REVISIONS, VERSION_TABLE


def test_revisions_are_alembics_history() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    walked = [s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()]
    assert tuple(reversed(walked)) == REVISIONS and REVISIONS[-1] == HEAD_REVISION


def test_reads_what_the_store_wrote_and_cannot_write(store: Store, db_url: str | None, state_dir: Path) -> None:
    store.upsert_environment("prod", current_release="r1", updated_at=1.0)
    store.add_event("prod", "deployed", "r1 is serving", at=2.0)
    with open_store_readonly(db_url, state_dir) as ro:
        assert type(ro) is StoreReader and not hasattr(ro, "add_event")
        env = ro.get_environment("prod")
        assert env is not None and env.current_release == "r1"
        assert [e.message for e in ro.list_events("prod")] == ["r1 is serving"]
        with pytest.raises(sa.exc.DBAPIError), ro._engine.connect() as conn, conn.begin():
            conn.execute(sa.text("DELETE FROM events"))
    assert len(store.list_events("prod")) == 1


def test_missing_database_is_refused_and_not_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPYARD_DATABASE_URL", raising=False)
    with pytest.raises(ShipyardError, match=r"no state database at .*state\.db"):
        open_store_readonly(None, tmp_path / ".shipyard")
    assert not (tmp_path / ".shipyard").exists()


def test_never_migrates_a_database_without_schema(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    sqlite3.connect(db).execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(ShipyardError, match="has no shipyard schema"):
        open_store_readonly(None, tmp_path)
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["other"]


def test_older_schema_is_refused_without_migrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(None, tmp_path).close()
    # This shipyard pretends to know a newer revision: the database on disk is now behind.
    monkeypatch.setattr(migrate_mod, "REVISIONS", (*REVISIONS, "9000"))
    monkeypatch.setattr(migrate_mod, "HEAD_REVISION", "9000")
    with pytest.raises(ShipyardError, match=rf"revision {HEAD_REVISION}, older than .* 9000.*shipyard up"):
        open_store_readonly(None, tmp_path)
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD_REVISION,)]


def test_newer_schema_is_refused_by_both(tmp_path: Path) -> None:
    open_store(None, tmp_path).close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'")
    for opener in (open_store_readonly, open_store):
        with pytest.raises(ShipyardError, match="revision f00d, which this shipyard does not know.*newer shipyard"):
            opener(None, tmp_path)


def test_empty_state_db_is_refused_not_reinitialised(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    db.touch()
    for opener in (open_store, open_store_readonly):
        with pytest.raises(ShipyardError) as err:
            opener(None, tmp_path)
        assert str(db) in err.value.message and "empty (0 bytes)" in err.value.message
        assert "delete it" in err.value.message and err.value.exit_code == 1
    assert db.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]


def test_a_new_database_is_never_empty_on_disk(tmp_path: Path) -> None:
    state = tmp_path / "new dir #1?"  # read-only opens by URI: the path must be quoted
    open_store(None, state).close()
    assert (state / "state.db").stat().st_size > 0
    assert not [p.name for p in state.iterdir() if p.name.startswith(".")]  # no temporary file left
    with open_store_readonly(None, state) as ro:
        assert ro.list_environments() == []
