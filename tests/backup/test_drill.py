"""Drills restore the newest backups into scratch targets, check them and measure RTO/RPO."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from shipyard.engine.backup import Backups, run_drills
from shipyard.primitives.clock import ManualClock

from .conftest import make_tree


@pytest.mark.postgres
def test_drill_passes_for_every_kind(tmp_path: Path, pg_database: str,
                                     make_backups: Callable[..., Backups]) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")
        conn.execute("INSERT INTO orders SELECT g, g FROM generate_series(1, 1000) g")
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
        db.executemany("INSERT INTO kv VALUES (?, ?)", [(str(i), "v") for i in range(100)])
    (tmp_path / "uploads").mkdir()
    make_tree(tmp_path / "uploads")
    backups = make_backups([
        {"kind": "postgres", "name": "db", "url": pg_database,
         "check_sql": ["SELECT count(*) = 1000 FROM orders", "SELECT sum(total) FROM orders"]},
        {"kind": "sqlite", "name": "cache", "path": "app.db"},
        {"kind": "files", "name": "uploads", "path": "uploads"},
    ], rto="1h", rpo="1h")
    assert all(r.ok for r in backups.run())

    results = {r.source: r for r in run_drills(backups)}
    for name, r in results.items():
        assert r.ok, (name, r.checks)
        assert r.rto_s is not None and r.rto_s >= 0 and r.rpo_s is not None and r.rpo_s >= 0
    names = {c["name"] for c in results["db"].to_dict()["checks"]}
    assert {"restore", "rows public.orders", "sql SELECT count(*) = 1000 FROM orders", "rto", "rpo"} <= names
    assert {"integrity_check", "rows kv"} <= {c.name for c in results["cache"].checks}
    assert {"tree_sha256"} <= {c.name for c in results["uploads"].checks}
    assert set(results["db"].to_dict()) >= {"source", "ok", "rto_s", "rpo_s", "checks"}


def test_drill_misses_rpo_and_fails_on_corruption(tmp_path: Path, make_backups: Callable[..., Backups]) -> None:
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute("CREATE TABLE kv (k TEXT)")
    backups = make_backups([{"kind": "sqlite", "name": "cache", "path": "app.db"},
                            {"kind": "files", "name": "never", "path": "missing-dir"}], rpo="15m", rto="1h")
    clock = ManualClock()
    backups.clock = clock
    results = backups.run()
    assert results[0].ok and not results[1].ok and "does not exist" in (results[1].error or "")

    clock.advance(600)
    [ok, none] = run_drills(backups)
    assert ok.ok and ok.rpo_s == 600
    assert not none.ok and none.checks[0].detail == "no backup to restore"

    clock.advance(600)  # the newest backup is now 20 min old: RPO 15m missed
    [late] = run_drills(backups, "cache")
    assert not late.ok
    [rpo] = [c for c in late.checks if c.name == "rpo"]
    assert not rpo.ok and "objective 15m" in rpo.detail
    assert all(c.ok for c in late.checks if c.name != "rpo")

    m = backups.newest("cache")
    assert m is not None
    data = backups.repo.store.root / "data" / m.blobs[-1][0][:2] / m.blobs[-1][0]
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 1
    data.write_bytes(bytes(raw))
    [bad] = run_drills(backups, "cache")
    assert not bad.ok and "failed authentication" in bad.checks[0].detail
