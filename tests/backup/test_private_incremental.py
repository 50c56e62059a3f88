"""Format 2: nothing about the data is readable without the key, and an unchanged region is stored once."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from shipyard.engine.backup import Backups
from shipyard.engine.backup.sources.files import tree_digest

TABLE = "zq_pgbench_ledgerxyz"
ROWS = 7351
FILE = "quarterly_payroll_zq.csv"


@pytest.mark.postgres
def test_no_table_name_path_or_row_count_is_readable(tmp_path: Path, pg_database: str,
                                                     make_backups: Callable[..., Backups]) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (aid int PRIMARY KEY, abalance int, filler char(84))")
        conn.execute(f"INSERT INTO {TABLE} SELECT g, 0, '' FROM generate_series(1, {ROWS}) g")
    with sqlite3.connect(tmp_path / "app.db") as db:
        db.execute(f"CREATE TABLE {TABLE}_lite (id INTEGER PRIMARY KEY)")
        db.executemany(f"INSERT INTO {TABLE}_lite VALUES (?)", [(i,) for i in range(ROWS)])
    (tmp_path / "uploads" / "hr").mkdir(parents=True)
    (tmp_path / "uploads" / "hr" / FILE).write_text("name,salary\n" * 100)
    backups = make_backups([{"kind": "postgres", "name": "db", "url": pg_database},
                            {"kind": "sqlite", "name": "cache", "path": "app.db"},
                            {"kind": "files", "name": "uploads", "path": "uploads"}])
    assert all(r.ok for r in backups.run())
    # The metadata is there, for whoever has the key...
    tables = {m.source: m.meta for m in backups.list_backups()}
    assert tables["db"]["tables"][f"public.{TABLE}"] == ROWS
    assert tables["cache"]["tables"][f"{TABLE}_lite"] == ROWS
    # ...and nowhere in clear: not in any object's content or name.
    needles = [TABLE.encode(), FILE.encode(), b"hr/", b'"tables"', b"tree_sha256", f":{ROWS}".encode(),
               f": {ROWS}".encode(), b"pg_dump", b"uploads/"]
    objects = [p for p in (tmp_path / "repo").rglob("*") if p.is_file()]
    assert len(objects) > 5
    for path in objects:
        data = path.read_bytes() + str(path.relative_to(tmp_path / "repo")).encode()
        found = [n for n in needles if n in data]
        assert not found, f"{path}: {found}"


def _tree(root: Path, files: int, size: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(files):
        d = root / f"d{i % 8}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:04d}.bin").write_bytes(rng.randbytes(size))


def test_incremental_stores_only_what_changed(tmp_path: Path, make_backups: Callable[..., Backups]) -> None:
    src = tmp_path / "big"
    _tree(src, 64, 1 << 20, 1)  # 64 MiB of incompressible files
    backups = make_backups([{"kind": "files", "name": "big", "path": "big"}], chunk_size=256 * 1024)
    [first] = backups.run()
    before = tree_digest(src)
    # 1 % changed: 640 KiB rewritten in place inside one file, one new small file.
    victim = src / "d3" / "f0011.bin"
    data = bytearray(victim.read_bytes())
    data[100_000:100_000 + 600 * 1024] = random.Random(2).randbytes(600 * 1024)
    victim.write_bytes(bytes(data))
    (src / "d5" / "new.txt").write_bytes(random.Random(3).randbytes(40 * 1024))
    [second] = backups.run()
    after = tree_digest(src)
    assert first.ok and second.ok
    assert first.stored_size > 64 << 20
    assert second.stored_size <= 0.05 * first.stored_size, (second.stored_size, first.stored_size)
    for res, digest in ((first, before), (second, after)):
        out = tmp_path / f"restored-{res.backup_id}"
        r = backups.restore("big", backup_id=res.backup_id, to_path=out)
        assert r.ok and tree_digest(out) == digest
