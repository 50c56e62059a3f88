"""SQLite: the online backup API into an in-memory database, serialized into the pipeline.

Never a copy of the live file (which may be mid-transaction or have a WAL beside it). The backup API gives a
consistent page image while writers continue; it goes to ``:memory:`` because any on-disk target would be
plaintext. Memory bound: about twice the database size while it is serialized (the in-memory copy plus
its serialization), then once while it streams. Restore writes the page image next to the target and, over
a live original, copies it in with the backup API again rather than replacing the file under open handles.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from shipyard.engine.backup.sources.base import BLOCK, DumpInfo, RestoreCheck, RestoreTarget, Writable
from shipyard.errors import NotFound, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.backup import SqliteSource


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n.replace(chr(34), chr(34) * 2)}"').fetchone()[0])
            for n in names}


def dump(src: SqliteSource, path: Path, sink: Writable, clock: Clock) -> DumpInfo:
    if not path.is_file():
        raise NotFound(f"source {src.name!r}: SQLite database {path} does not exist")
    try:
        live = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        mem = sqlite3.connect(":memory:")
        try:
            snapshot_time = clock.time()
            live.backup(mem)
            counts = _counts(mem)
            page_size = int(mem.execute("PRAGMA page_size").fetchone()[0])
            image = mem.serialize()
        finally:
            mem.close()
            live.close()
    except sqlite3.Error as exc:
        raise ShipyardError(f"source {src.name!r}: SQLite backup of {path} failed: {exc}") from exc
    view = memoryview(image)
    for off in range(0, len(view), BLOCK):
        sink.write(view[off: off + BLOCK])
    meta = {"tables": counts, "page_size": page_size, "db_size": len(image)}
    return DumpInfo(snapshot_time, meta, {"sqlite": sqlite3.sqlite_version})


def integrity(path: Path) -> RestoreCheck:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    return RestoreCheck("integrity_check", rows == ["ok"], "; ".join(rows)[:300])


def check(path: Path, expected: dict[str, int]) -> list[RestoreCheck]:
    checks = [integrity(path)]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        got = _counts(conn)
    for table, rows in sorted(expected.items()):
        have = got.get(table)
        checks.append(RestoreCheck(f"rows {table}", have == rows,
                            f"{have} rows, manifest {rows}" if have is not None else "table missing"))
    return checks


def restore(src: SqliteSource, original: Path, blocks: Iterator[bytes], target: RestoreTarget) -> Path:
    """Writes the database to ``target.path`` (or over ``original`` with ``target.replace``); returns it."""
    dest = target.path or original
    if dest.exists() and not target.replace:
        raise Refused(f"{dest} exists; pass --yes to restore over it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.restore-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            for block in blocks:  # raises IntegrityError before the file is used
                fh.write(block)
            fh.flush()
            os.fsync(fh.fileno())
        bad = integrity(tmp)
        if not bad.ok:
            raise ShipyardError(f"restored database fails integrity_check: {bad.detail}")
        if dest.exists():
            # Over a database that may be open elsewhere: copy pages in through SQLite, not rename.
            with contextlib.closing(sqlite3.connect(tmp)) as restored, \
                    contextlib.closing(sqlite3.connect(dest, timeout=30)) as live:
                restored.backup(live)
            tmp.unlink()
        else:
            os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
