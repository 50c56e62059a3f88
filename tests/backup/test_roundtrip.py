"""Backup → restore → identical data, for each source kind, against real PostgreSQL / SQLite / files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shipyard.engine.backup import Backups
from shipyard.errors import Refused
from shipyard.primitives.pgcluster import PgCluster

from .conftest import make_tree

SCHEMA = """
CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz);
CREATE TABLE blobs (id int PRIMARY KEY, data bytea, doc jsonb, note text);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id bigint PRIMARY KEY, user_id int REFERENCES users(id), amount numeric(12,2));
INSERT INTO users (name, email, created)
  SELECT 'user ' || g, 'u' || g || '@example.com', '2024-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 20000) g;
INSERT INTO blobs SELECT g, decode(md5(g::text), 'hex'), jsonb_build_object('g', g, 'sq', g * g),
  CASE WHEN g % 3 = 0 THEN NULL ELSE 'ünïcødé ' || g END FROM generate_series(1, 3000) g;
INSERT INTO billing.invoices SELECT g, 1 + g % 20000, g * 1.25 FROM generate_series(1, 5000) g;
"""


def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("users", "blobs", "billing.invoices")}


@pytest.mark.postgres
def test_postgres_round_trip_every_row(pg_cluster: PgCluster, pg_database: str,
                                       make_backups: Callable[..., Backups]) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(SCHEMA)
    backups = make_backups([{"kind": "postgres", "name": "db", "url": pg_database}])
    [res] = backups.run()
    assert res.ok, res.error
    m = backups.newest("db")
    assert m is not None
    assert m.meta["tables"] == {"public.users": 20000, "public.blobs": 3000, "billing.invoices": 5000}
    assert "pg_dump" in m.tools["pg_dump"]

    target = pg_cluster.dsn(pg_database.rsplit("/", 1)[1] + "_restored")
    result = backups.restore("db", to_url=target)
    assert result.ok, result.checks
    assert rows(target) == rows(pg_database)
    # The sequence came along: a new row gets the next id.
    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute("INSERT INTO users (name) VALUES ('new') RETURNING id").fetchone()
        assert row is not None and row[0] == 20001

    # Restoring again onto the now-populated target needs explicit confirmation...
    with pytest.raises(Refused, match="--yes"):
        backups.restore("db", to_url=target)
    # ...and with it, the target ends up exactly like the backup (the extra row is gone).
    backups.restore("db", to_url=target, replace=True)
    assert rows(target) == rows(pg_database)


def test_sqlite_round_trip_while_written(tmp_path: Path, make_backups: Callable[..., Backups]) -> None:
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, payload BLOB)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", os.urandom(64)) for i in range(5000)])
    conn.execute("CREATE INDEX items_name ON items(name)")
    conn.commit()
    # An open write transaction in WAL mode: the backup must still see the last committed state.
    conn.execute("INSERT INTO items VALUES (99999, 'uncommitted', NULL)")
    backups = make_backups([{"kind": "sqlite", "name": "cache", "path": "app.db"}])
    [res] = backups.run()
    assert res.ok, res.error
    conn.rollback()
    expected = conn.execute("SELECT * FROM items ORDER BY id").fetchall()
    conn.close()

    out = tmp_path / "restored" / "copy.db"
    result = backups.restore("cache", to_path=out)
    assert result.ok, result.checks
    assert {c.name for c in result.checks} >= {"integrity_check", "rows items"}
    with sqlite3.connect(out) as restored:
        assert restored.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert restored.execute("SELECT * FROM items ORDER BY id").fetchall() == expected

    # Over the original (with confirmation): later changes are undone.
    with sqlite3.connect(db) as live:
        live.execute("DELETE FROM items WHERE id < 100")
    with pytest.raises(Refused):
        backups.restore("cache")
    backups.restore("cache", replace=True)
    with sqlite3.connect(db) as live:
        assert live.execute("SELECT count(*) FROM items").fetchone() == (5000,)


def _snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.lstat()
        content = (p.read_bytes() if stat.S_ISREG(st.st_mode) else
                   os.readlink(p) if stat.S_ISLNK(st.st_mode) else None)
        out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), content,
                                         None if stat.S_ISLNK(st.st_mode) else round(st.st_mtime, 3))
    return out


def test_files_round_trip_hashes_modes_mtimes(tmp_path: Path, make_backups: Callable[..., Backups]) -> None:
    src = tmp_path / "uploads"
    src.mkdir()
    make_tree(src)
    os.chmod(src, 0o750)
    os.utime(src, (1_500_000_000, 1_500_000_000.75))
    backups = make_backups([{"kind": "files", "name": "uploads", "path": "uploads"}])
    [res] = backups.run()
    assert res.ok, res.error
    before = _snapshot(src)

    out = tmp_path / "restored"
    result = backups.restore("uploads", to_path=out)
    assert result.ok, result.checks
    assert _snapshot(out) == before

    # Over the original: a deleted file comes back, a new one goes away.
    (src / "a.txt").unlink()
    (src / "stray").write_text("x")
    with pytest.raises(Refused, match="--yes"):
        backups.restore("uploads")
    backups.restore("uploads", replace=True)
    assert _snapshot(src) == before
    assert not any(p.name.startswith(".uploads.") for p in tmp_path.iterdir())
