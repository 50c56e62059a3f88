"""Round trips through a real S3 server (SeaweedFS) and a real SFTP server (OpenSSH) restore identically."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from shipyard.engine.backup import Backups
from shipyard.engine.backup.sources.files import tree_digest

from .servers import make_tree


def _rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM accounts ORDER BY id").fetchall()


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["s3", "sftp"])
def test_round_trip_every_kind(where: str, tmp_path: Path, pg_database: str, request: pytest.FixtureRequest,
                               remote_backups: Callable[..., Backups]) -> None:
    url = request.getfixturevalue(f"{where}_url")
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance numeric, note text)")
        conn.execute("INSERT INTO accounts SELECT g, g * 1.5, md5(g::text) FROM generate_series(1, 5000) g")
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(3000)])
    make_tree(tmp_path / "uploads")
    backups = remote_backups([{"kind": "postgres", "name": "db", "url": pg_database},
                              {"kind": "sqlite", "name": "cache", "path": "app.db"},
                              {"kind": "files", "name": "uploads", "path": "uploads"}], url)
    results = backups.run()
    assert all(r.ok for r in results), [r.error for r in results]
    assert not (tmp_path / "repo").exists()
    assert all(v.ok for v in backups.verify()), backups.verify()

    target = pg_database + "_r"
    assert backups.restore("db", to_url=target).ok
    assert _rows(target) == _rows(pg_database)
    r = backups.restore("cache", to_path=tmp_path / "restored.db")
    assert r.ok
    with sqlite3.connect(tmp_path / "restored.db") as a, sqlite3.connect(tmp_path / "app.db") as b:
        assert a.execute("SELECT * FROM t ORDER BY id").fetchall() == b.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert backups.restore("uploads", to_path=tmp_path / "out").ok
    assert tree_digest(tmp_path / "out") == tree_digest(tmp_path / "uploads")
