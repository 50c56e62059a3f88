"""Revision 0006: `events.at` is indexed, so reading events by time (`events --since`, the evaluator,
`logs`) does not scan the table; a database at 0003 gets it on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from shipyard.primitives.store import open_store
from shipyard.primitives.store.migrate import HEAD_REVISION, VERSION_TABLE


def _plan(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM events WHERE at >= 1").fetchall()
    return " ".join(str(r[-1]) for r in rows)


def test_events_at_index_after_upgrade_from_0003(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    store.add_event("prod", "deploy", "x", at=5.0)
    store.close()
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as conn:  # as a shipyard of revision 0003 left it
        conn.execute("DROP INDEX ix_events_at")
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '0003'")
    assert "ix_events_at" not in _plan(db)
    store = open_store(None, tmp_path)
    try:
        names = {ix["name"] for ix in sa.inspect(store._engine).get_indexes("events")}
        assert "ix_events_at" in names and HEAD_REVISION == "0006"
        assert [e.kind for e in store.events_since(1.0, "prod")] == ["deploy"]
    finally:
        store.close()
    assert "ix_events_at" in _plan(db)
