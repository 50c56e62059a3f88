"""Revision 0006: `events.at` is indexed, so reading events by time (`events --since`, the evaluator,
`logs`) does not scan the table; a database of the revision before it gets it on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from shipyard.primitives.store import open_store
from shipyard.primitives.store.migrate import REVISIONS, _run_alembic


def _plan(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM events WHERE at >= 1").fetchall()
    return " ".join(str(r[-1]) for r in rows)


def test_events_at_index_after_upgrade_from_the_revision_before(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    before = REVISIONS[REVISIONS.index("0006") - 1]
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn, conn.begin():  # the database a shipyard of that revision left
        _run_alembic(conn, before)
    engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO events (env, kind, message, at) VALUES ('prod', 'deploy', 'x', 5.0)")
    assert "ix_events_at" not in _plan(db)
    store = open_store(None, tmp_path)
    try:
        names = {ix["name"] for ix in sa.inspect(store._engine).get_indexes("events")}
        assert "ix_events_at" in names
        assert [e.kind for e in store.events_since(1.0, "prod")] == ["deploy"]
    finally:
        store.close()
    assert "ix_events_at" in _plan(db)
