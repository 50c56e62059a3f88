"""The state database: releases, environments, deployments (with their lock), steps, events, instances,
backup runs and drills. ``Store`` is ``StoreReader`` (reading.py: the queries) plus the writes here.

Every method is one short transaction. Times are given by the caller (float epoch seconds); the store
never reads a clock. Methods are blocking; the control plane calls them from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from shipyard.errors import LockHeld, NotFound, Refused, ShipyardError
from shipyard.primitives.store import schema as t
from shipyard.primitives.store.audit import AuditStore
from shipyard.primitives.store.connect import WRITE_OPTION, translated
from shipyard.primitives.store.history import HistoryStore
from shipyard.primitives.store.images import ImageStore
from shipyard.primitives.store.incidents import IncidentStore
from shipyard.primitives.store.jobruns import JobRunStore
from shipyard.primitives.store.locks import LockStore
from shipyard.primitives.store.notify import NotifyStore
from shipyard.primitives.store.reading import StoreReader
from shipyard.primitives.store.records import (
    DEPLOYMENT_OUTCOMES,
    RELEASE_STATUSES,
    STEP_STATUSES,
    DeploymentRec,
    EnvironmentRec,
    InstanceRec,
    JSONDict,
    ReleaseRec,
)
from shipyard.primitives.store.rows import to_deployment, to_environment
from shipyard.primitives.store.tokens import TokenStore

INTERRUPTED_REASON = "the control plane stopped while this deployment was running"


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


class Store(StoreReader, HistoryStore, LockStore, TokenStore, AuditStore, NotifyStore, JobRunStore, IncidentStore,
            ImageStore):
    """The state database, read and written."""

    # -- plumbing -------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with translated(self._url, "writing"), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def _upsert(self, table: sa.Table, values: Mapping[str, Any], key: str,
                update: Iterable[str]) -> sa.Insert:
        insert = pg_dialect.insert if self.backend == "postgresql" else sqlite_dialect.insert
        stmt = insert(table).values(**values)
        changed = {name: stmt.excluded[name] for name in update}
        if not changed:
            return stmt.on_conflict_do_nothing(index_elements=[key])
        return stmt.on_conflict_do_update(index_elements=[key], set_=changed)

    # -- releases -------------------------------------------------------------------------------------

    def add_release(self, rec: ReleaseRec) -> None:
        _check(rec.status, RELEASE_STATUSES, "release status")
        try:
            with self._write() as conn:
                conn.execute(t.releases.insert().values(
                    id=rec.id, commit_sha=rec.commit, ref=rec.ref, message=rec.message, author=rec.author,
                    created_at=rec.created_at, build_duration_s=rec.build_duration_s,
                    content_hash=rec.content_hash, spec=rec.spec, secrets_version=rec.secrets_version,
                    build_log=rec.build_log, status=rec.status))
        except sa.exc.IntegrityError as exc:
            raise ShipyardError(f"release {rec.id} already exists") from exc

    def delete_release(self, release_id: str) -> None:
        """Forget a release. Refused while an environment serves it or an instance runs it."""
        with self._write() as conn:
            serving = conn.execute(sa.select(t.environments.c.name)
                                   .where(t.environments.c.current_release == release_id)
                                   .order_by(t.environments.c.name)).scalars().all()
            if serving:
                raise Refused(f"release {release_id} is serving on {', '.join(serving)}")
            running = conn.execute(sa.select(t.instances.c.env).distinct()
                                   .where(t.instances.c.release == release_id)
                                   .order_by(t.instances.c.env)).scalars().all()
            if running:
                raise Refused(f"release {release_id} has instances on {', '.join(running)}")
            conn.execute(t.releases.delete().where(t.releases.c.id == release_id))

    # -- environments ---------------------------------------------------------------------------------

    def upsert_environment(
        self,
        name: str,
        *,
        current_release: str | None | _Unset = UNSET,
        previous_release: str | None | _Unset = UNSET,
        routing: JSONDict | None | _Unset = UNSET,
        secrets_version: int | _Unset = UNSET,
        updated_at: float | _Unset = UNSET,
    ) -> EnvironmentRec:
        """Create the environment or change only the fields given (None clears a release)."""
        given: dict[str, Any] = {
            key: value for key, value in (
                ("current_release", current_release), ("previous_release", previous_release),
                ("routing", routing), ("secrets_version", secrets_version), ("updated_at", updated_at),
            ) if value is not UNSET
        }
        values = {"name": name, "current_release": None, "previous_release": None, "routing": None,
                  "secrets_version": 0, "updated_at": 0.0, **given}
        with self._write() as conn:
            conn.execute(self._upsert(t.environments, values, "name", given))
            row = conn.execute(t.environments.select().where(t.environments.c.name == name)).one()
        return to_environment(row)

    # -- deployments and the per-environment lock -------------------------------------------------------

    def begin_deployment(
        self,
        env: str,
        *,
        kind: str,
        release: str,
        previous_release: str | None,
        strategy: str,
        plan: list[JSONDict],
        started_at: float,
        detail: JSONDict | None = None,
    ) -> DeploymentRec:
        """Record a running deployment and take ``env``'s lock, or raise LockHeld naming the holder."""
        # The lock row (env is its primary key) is inserted in the same transaction as the deployment:
        # of two processes racing, the database lets exactly one commit.
        for _ in range(5):
            try:
                with self._write() as conn:
                    result = conn.execute(t.deployments.insert().values(
                        env=env, kind=kind, release=release, previous_release=previous_release,
                        strategy=strategy, status="running", reason=None, started_at=started_at,
                        finished_at=None, plan=plan, detail=detail))
                    dep_id = _new_id(result)
                    conn.execute(t.locks.insert().values(env=env, deployment_id=dep_id, acquired_at=started_at))
                    row = conn.execute(t.deployments.select().where(t.deployments.c.id == dep_id)).one()
                return to_deployment(row)
            except sa.exc.IntegrityError as exc:
                holder = self.running_deployment(env)
                if holder is not None:
                    raise LockHeld(
                        f"deployment {holder.id} ({holder.kind} of {holder.release}) is already running "
                        f"on {env}") from exc
                # The holder finished between our insert and our look: try again.
        raise LockHeld(f"could not take the deployment lock of {env}: it keeps changing hands")

    def finish_deployment(
        self,
        deployment_id: int,
        *,
        outcome: str,
        reason: str | None,
        finished_at: float,
        detail: JSONDict | None = None,
    ) -> DeploymentRec:
        """Record the outcome and release the lock. ``detail`` None keeps the stored detail."""
        _check(outcome, DEPLOYMENT_OUTCOMES, "deployment outcome")
        values: dict[str, Any] = {"status": outcome, "reason": reason, "finished_at": finished_at}
        if detail is not None:
            values["detail"] = detail
        d = t.deployments
        with self._write() as conn:
            updated = conn.execute(d.update().where(d.c.id == deployment_id, d.c.status == "running")
                                   .values(**values)).rowcount
            row = conn.execute(d.select().where(d.c.id == deployment_id)).first()
            if row is None:
                raise NotFound(f"deployment {deployment_id} does not exist")
            if not updated:
                raise ShipyardError(f"deployment {deployment_id} is not running (it is {row.status})")
            conn.execute(t.locks.delete().where(t.locks.c.deployment_id == deployment_id))
        return to_deployment(row)

    def set_deployment_detail(self, deployment_id: int, detail: JSONDict | None) -> None:
        with self._write() as conn:
            conn.execute(t.deployments.update().where(t.deployments.c.id == deployment_id)
                         .values(detail=detail))

    def interrupt_running(self, now: float) -> list[DeploymentRec]:
        """Mark every running deployment interrupted and release every lock (control plane restart).

        Their running steps become failed (timed up to ``now``) and their pending steps skipped, so no
        record is left claiming work is under way.
        """
        d, s = t.deployments, t.steps
        with self._write() as conn:
            ids = conn.execute(sa.select(d.c.id).where(d.c.status == "running")).scalars().all()
            if ids:
                conn.execute(d.update().where(d.c.id.in_(ids)).values(
                    status="interrupted", finished_at=now,
                    reason=sa.func.coalesce(d.c.reason, INTERRUPTED_REASON)))
                conn.execute(s.update().where(s.c.deployment_id.in_(ids), s.c.status == "running").values(
                    status="failed",
                    duration_s=sa.case((s.c.started_at.is_(None), None), else_=now - s.c.started_at)))
                conn.execute(s.update().where(s.c.deployment_id.in_(ids), s.c.status == "pending")
                             .values(status="skipped"))
            conn.execute(t.locks.delete())
            rows = conn.execute(d.select().where(d.c.id.in_(ids)).order_by(d.c.id)).all() if ids else []
        return [to_deployment(row) for row in rows]

    # -- steps ----------------------------------------------------------------------------------------

    def add_step(
        self,
        deployment_id: int,
        *,
        index: int,
        name: str,
        status: str,
        started_at: float | None,
        detail: JSONDict | None = None,
    ) -> int:
        _check(status, STEP_STATUSES, "step status")
        try:
            with self._write() as conn:
                result = conn.execute(t.steps.insert().values(
                    deployment_id=deployment_id, idx=index, name=name, status=status, started_at=started_at,
                    duration_s=None, detail=detail))
                return _new_id(result)
        except sa.exc.IntegrityError as exc:
            raise NotFound(f"deployment {deployment_id} does not exist") from exc

    def update_step(
        self,
        step_id: int,
        *,
        status: str,
        duration_s: float | None,
        detail: JSONDict | None = None,
        started_at: float | None = None,
    ) -> None:
        """Change a step's status and duration; ``detail``/``started_at`` None keep the stored ones."""
        _check(status, STEP_STATUSES, "step status")
        values: dict[str, Any] = {"status": status, "duration_s": duration_s}
        if detail is not None:
            values["detail"] = detail
        if started_at is not None:
            values["started_at"] = started_at
        with self._write() as conn:
            if not conn.execute(t.steps.update().where(t.steps.c.id == step_id).values(**values)).rowcount:
                raise NotFound(f"step {step_id} does not exist")

    # -- events ---------------------------------------------------------------------------------------

    def add_event(self, env: str | None, kind: str, message: str, *, data: JSONDict | None = None,
                  at: float) -> int:
        with self._write() as conn:
            result = conn.execute(t.events.insert().values(env=env, kind=kind, message=message, data=data,
                                                           at=at))
            return _new_id(result)

    # -- instances ------------------------------------------------------------------------------------

    def upsert_instance(self, rec: InstanceRec) -> None:
        values = {"id": rec.id, "env": rec.env, "release": rec.release, "idx": rec.index, "port": rec.port,
                  "pid": rec.pid, "create_time": rec.create_time, "role": rec.role, "state": rec.state,
                  "started_at": rec.started_at, "restarts": rec.restarts, "process": rec.process}
        with self._write() as conn:
            conn.execute(self._upsert(t.instances, values, "id", [k for k in values if k != "id"]))

    def delete_instance(self, instance_id: str) -> None:
        with self._write() as conn:
            conn.execute(t.instances.delete().where(t.instances.c.id == instance_id))

    # -- backups and drills ---------------------------------------------------------------------------

    def add_backup_run(self, env: str, source: str, *, status: str, started_at: float,
                       finished_at: float | None, backup_id: str | None, detail: JSONDict | None) -> int:
        with self._write() as conn:
            result = conn.execute(t.backup_runs.insert().values(
                env=env, source=source, status=status, started_at=started_at, finished_at=finished_at,
                backup_id=backup_id, detail=detail))
            return _new_id(result)

    def add_drill(self, env: str, *, ok: bool, started_at: float, detail: JSONDict) -> int:
        with self._write() as conn:
            result = conn.execute(t.drills.insert().values(env=env, ok=ok, started_at=started_at,
                                                           detail=detail))
            return _new_id(result)


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(sorted(allowed))}, got {value!r}")
