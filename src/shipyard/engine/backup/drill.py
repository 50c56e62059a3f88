"""Restore drills: restore the newest backup of each source into a scratch target, check it, and measure
RTO (restore + checks wall time) and RPO (age of the newest restorable point) against the objectives."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shipyard.engine.backup.service import AnySource, Backups
from shipyard.engine.backup.sources import mysql
from shipyard.engine.backup.sources.base import RestoreCheck, RestoreTarget
from shipyard.errors import ShipyardError
from shipyard.primitives.pgcluster import PgCluster
from shipyard.primitives.spec.backup import MysqlSource, PostgresSource, RedisSource
from shipyard.primitives.spec.durations import format_duration


@dataclass(frozen=True)
class DrillResult:
    source: str
    kind: str
    ok: bool
    started_at: float
    rto_s: float | None
    rpo_s: float | None
    checks: tuple[RestoreCheck, ...]
    backup_id: str | None = None
    repository: str | None = None  # where it was restored from (a copy_to site when the repository is gone)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "ok": self.ok, "repository": self.repository,
                "rto_s": None if self.rto_s is None else round(self.rto_s, 3),
                "rpo_s": None if self.rpo_s is None else round(self.rpo_s, 3),
                "checks": [c.to_dict() for c in self.checks], "backup_id": self.backup_id, "kind": self.kind}


def _objective(name: str, measured: float, limit: float | None) -> RestoreCheck | None:
    if limit is None:
        return None
    ok = measured <= limit
    return RestoreCheck(name, ok, f"{format_duration(measured)} {'≤' if ok else '>'} objective {format_duration(limit)}")


def run_drills(backups: Backups, only: str | None = None,
               cluster_factory: Callable[[], PgCluster] = PgCluster) -> list[DrillResult]:
    return [drill_one(backups, src, cluster_factory) for src in backups.sources(only)]


def drill_one(backups: Backups, src: AnySource, cluster_factory: Callable[[], PgCluster]) -> DrillResult:
    if isinstance(src, PostgresSource) and src.pitr:
        return drill_pitr(backups, src)
    clock, spec = backups.clock, backups.spec
    started = clock.time()
    newest = backups.newest(src.name)
    if newest is None:
        return DrillResult(src.name, src.kind, False, started, None, None,
                           (RestoreCheck("backup", False, "no backup to restore"),))
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-drill-"))
    cluster: PgCluster | None = None
    scratch_db: mysql.MysqlUrl | None = None
    checks: list[RestoreCheck] = []
    rto: float | None = None
    try:
        if isinstance(src, PostgresSource):
            # The scratch server's startup is drill scaffolding, not part of the measured restore.
            cluster = cluster_factory()
            cluster.init().start()
            target = RestoreTarget(url=cluster.dsn("drill"))
        elif isinstance(src, MysqlSource):
            # A scratch database on the source's server (dropped afterwards): MariaDB has no cheap throwaway
            # server the way initdb gives one, and the source server's version is the one that matters.
            scratch_db = mysql.parse_url(backups.url_of(src), src.name)
            scratch_db = replace(scratch_db, database=f"{scratch_db.database}_drill_{secrets.token_hex(3)}")
            target = RestoreTarget(url=scratch_db.to_url())
        elif isinstance(src, RedisSource):
            target = RestoreTarget(path=scratch / "dump.rdb")  # loaded and counted by a private redis-server
        else:
            target = RestoreTarget(path=scratch / ("restored.db" if src.kind == "sqlite" else "restored"))
        t0 = clock.monotonic()
        try:
            m = backups.pick(src.name, newest.id)
            restored, _ = backups.restore_into(src, m, target, user_sql=True)
            checks.append(RestoreCheck("restore", True, f"backup {m.id}"))
            checks.extend(restored)
        except ShipyardError as exc:
            checks.append(RestoreCheck("restore", False, str(exc)))
        rto = clock.monotonic() - t0
    finally:
        if cluster is not None:
            cluster.destroy()
        if scratch_db is not None:
            mysql.drop(scratch_db)
        shutil.rmtree(scratch, ignore_errors=True)
    rpo = clock.time() - newest.snapshot_time
    for check in (_objective("rto", rto, spec.rto), _objective("rpo", rpo, spec.rpo)):
        if check is not None:
            checks.append(check)
    return DrillResult(src.name, src.kind, all(c.ok for c in checks), started, rto, rpo, tuple(checks),
                       newest.id, backups.source_repo.url)


def drill_pitr(backups: Backups, src: PostgresSource) -> DrillResult:
    """pgBackRest restore of the newest backup + all archived WAL into a scratch data directory, started
    privately until promoted and checked. RTO includes the WAL replay (that is part of a real restore);
    RPO is the age of the newest restorable point: the arrival of the newest archived WAL segment, or now
    when the source has written nothing since (an idle server ships no segments but loses nothing)."""
    clock, spec = backups.clock, backups.spec
    started = clock.time()
    scratch = Path(tempfile.mkdtemp(prefix="shipyard-drill-"))
    os.chmod(scratch, 0o711)  # the cluster's OS user must reach the data directory inside
    checks: list[RestoreCheck] = []
    label: str | None = None
    t0 = clock.monotonic()
    try:
        restored = backups.pitr_restore_into(src, scratch / "data", user_sql=True)
        label = restored.label
        checks.extend(restored.checks)
    except ShipyardError as exc:
        checks.append(RestoreCheck("restore", False, str(exc)))
    finally:
        rto = clock.monotonic() - t0
        shutil.rmtree(scratch, ignore_errors=True)
    rpo: float | None = None
    try:
        stanza = backups.stanza(src)
        newest = stanza.restorable_until(stanza.info(), clock.time())
    except ShipyardError as exc:
        checks.append(RestoreCheck("archive", False, str(exc)))
        newest = None
    if newest is None:
        checks.append(RestoreCheck("rpo", False, "no archived WAL"))
    else:
        rpo = max(0.0, clock.time() - newest)
        checks.extend(c for c in [_objective("rpo", rpo, spec.rpo)] if c is not None)
    checks.extend(c for c in [_objective("rto", rto, spec.rto)] if c is not None)
    return DrillResult(src.name, src.kind, all(c.ok for c in checks), started, rto, rpo, tuple(checks), label)
