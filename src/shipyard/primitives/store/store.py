"""The state database: releases, environments, deployments (with their lock), steps, events, instances,
backup runs and drills.

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
from sqlalchemy.engine import URL, Engine

from shipyard.errors import LockHeld, NotFound, Refused, ShipyardError
from shipyard.primitives.store import schema as t
from shipyard.primitives.store.connect import WRITE_OPTION, safe_url, translated
from shipyard.primitives.store.records import (
    DEPLOYMENT_OUTCOMES,
    RELEASE_STATUSES,
    STEP_STATUSES,
    BackupRunRec,
    DeploymentRec,
    DrillRec,
    EnvironmentRec,
    EventRec,
    InstanceRec,
    JSONDict,
    ReleaseRec,
    StepRec,
)

INTERRUPTED_REASON = "the control plane stopped while this deployment was running"


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


class Store:
    def __init__(self, engine: Engine, url: URL) -> None:
        self._engine = engine
        self._url = url

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return safe_url(self._url)

    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with translated(self._url, "reading"), self._engine.connect() as conn, conn.begin():
            yield conn

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

    def get_release(self, release_id: str) -> ReleaseRec | None:
        with self._read() as conn:
            row = conn.execute(t.releases.select().where(t.releases.c.id == release_id)).first()
        return None if row is None else _release(row)

    def list_releases(self) -> list[ReleaseRec]:
        """Newest first."""
        query = t.releases.select().order_by(t.releases.c.created_at.desc(), t.releases.c.id.desc())
        with self._read() as conn:
            return [_release(row) for row in conn.execute(query)]

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

    def get_environment(self, name: str) -> EnvironmentRec | None:
        with self._read() as conn:
            row = conn.execute(t.environments.select().where(t.environments.c.name == name)).first()
        return None if row is None else _environment(row)

    def list_environments(self) -> list[EnvironmentRec]:
        with self._read() as conn:
            rows = conn.execute(t.environments.select().order_by(t.environments.c.name))
            return [_environment(row) for row in rows]

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
        return _environment(row)

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
                return _deployment(row)
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
        return _deployment(row)

    def set_deployment_detail(self, deployment_id: int, detail: JSONDict | None) -> None:
        with self._write() as conn:
            conn.execute(t.deployments.update().where(t.deployments.c.id == deployment_id)
                         .values(detail=detail))

    def get_deployment(self, deployment_id: int) -> DeploymentRec | None:
        with self._read() as conn:
            row = conn.execute(t.deployments.select().where(t.deployments.c.id == deployment_id)).first()
        return None if row is None else _deployment(row)

    def list_deployments(self, env: str | None, limit: int = 50) -> list[DeploymentRec]:
        """Newest first; every environment's when ``env`` is None."""
        query = t.deployments.select().order_by(t.deployments.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.deployments.c.env == env)
        with self._read() as conn:
            return [_deployment(row) for row in conn.execute(query)]

    def running_deployment(self, env: str) -> DeploymentRec | None:
        """The deployment holding ``env``'s lock, if any."""
        query = (t.deployments.select()
                 .join_from(t.deployments, t.locks, t.locks.c.deployment_id == t.deployments.c.id)
                 .where(t.locks.c.env == env))
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _deployment(row)

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
        return [_deployment(row) for row in rows]

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

    def list_steps(self, deployment_id: int) -> list[StepRec]:
        """In index order."""
        query = (t.steps.select().where(t.steps.c.deployment_id == deployment_id)
                 .order_by(t.steps.c.idx, t.steps.c.id))
        with self._read() as conn:
            return [_step(row) for row in conn.execute(query)]

    # -- events ---------------------------------------------------------------------------------------

    def add_event(self, env: str | None, kind: str, message: str, *, data: JSONDict | None = None,
                  at: float) -> int:
        with self._write() as conn:
            result = conn.execute(t.events.insert().values(env=env, kind=kind, message=message, data=data,
                                                           at=at))
            return _new_id(result)

    def list_events(self, env: str | None = None, limit: int = 100,
                    kinds: Iterable[str] | None = None) -> list[EventRec]:
        """The ``limit`` newest events, newest first; every environment's when ``env`` is None."""
        query = t.events.select().order_by(t.events.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.events.c.env == env)
        if kinds is not None:
            query = query.where(t.events.c.kind.in_(list(kinds)))
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query)]

    # -- instances ------------------------------------------------------------------------------------

    def upsert_instance(self, rec: InstanceRec) -> None:
        values = {"id": rec.id, "env": rec.env, "release": rec.release, "idx": rec.index, "port": rec.port,
                  "pid": rec.pid, "create_time": rec.create_time, "role": rec.role, "state": rec.state,
                  "started_at": rec.started_at, "restarts": rec.restarts}
        with self._write() as conn:
            conn.execute(self._upsert(t.instances, values, "id", [k for k in values if k != "id"]))

    def get_instance(self, instance_id: str) -> InstanceRec | None:
        with self._read() as conn:
            row = conn.execute(t.instances.select().where(t.instances.c.id == instance_id)).first()
        return None if row is None else _instance(row)

    def list_instances(self, env: str | None = None) -> list[InstanceRec]:
        i = t.instances
        query = i.select().order_by(i.c.env, i.c.release, i.c.idx, i.c.id)
        if env is not None:
            query = query.where(i.c.env == env)
        with self._read() as conn:
            return [_instance(row) for row in conn.execute(query)]

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

    def list_backup_runs(self, env: str | None, limit: int = 50) -> list[BackupRunRec]:
        """Newest first."""
        query = t.backup_runs.select().order_by(t.backup_runs.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.backup_runs.c.env == env)
        with self._read() as conn:
            return [_backup_run(row) for row in conn.execute(query)]

    def add_drill(self, env: str, *, ok: bool, started_at: float, detail: JSONDict) -> int:
        with self._write() as conn:
            result = conn.execute(t.drills.insert().values(env=env, ok=ok, started_at=started_at,
                                                           detail=detail))
            return _new_id(result)

    def list_drills(self, env: str | None, limit: int = 50) -> list[DrillRec]:
        """Newest first."""
        query = t.drills.select().order_by(t.drills.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.drills.c.env == env)
        with self._read() as conn:
            return [_drill(row) for row in conn.execute(query)]


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _check(value: str, allowed: frozenset[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(sorted(allowed))}, got {value!r}")


# -- rows → records -------------------------------------------------------------------------------------

def _release(row: sa.Row[Any]) -> ReleaseRec:
    return ReleaseRec(id=row.id, commit=row.commit_sha, ref=row.ref, message=row.message, author=row.author,
                      created_at=row.created_at, build_duration_s=row.build_duration_s,
                      content_hash=row.content_hash, spec=row.spec, secrets_version=row.secrets_version,
                      build_log=row.build_log, status=row.status)


def _environment(row: sa.Row[Any]) -> EnvironmentRec:
    return EnvironmentRec(name=row.name, current_release=row.current_release,
                          previous_release=row.previous_release, routing=row.routing,
                          secrets_version=row.secrets_version, updated_at=row.updated_at)


def _deployment(row: sa.Row[Any]) -> DeploymentRec:
    return DeploymentRec(id=row.id, env=row.env, kind=row.kind, release=row.release,
                         previous_release=row.previous_release, strategy=row.strategy, status=row.status,
                         reason=row.reason, started_at=row.started_at, finished_at=row.finished_at,
                         plan=row.plan, detail=row.detail)


def _step(row: sa.Row[Any]) -> StepRec:
    return StepRec(id=row.id, deployment_id=row.deployment_id, index=row.idx, name=row.name,
                   status=row.status, started_at=row.started_at, duration_s=row.duration_s, detail=row.detail)


def _event(row: sa.Row[Any]) -> EventRec:
    return EventRec(id=row.id, env=row.env, kind=row.kind, message=row.message, data=row.data, at=row.at)


def _instance(row: sa.Row[Any]) -> InstanceRec:
    return InstanceRec(id=row.id, env=row.env, release=row.release, index=row.idx, port=row.port, pid=row.pid,
                       create_time=row.create_time, role=row.role, state=row.state, started_at=row.started_at,
                       restarts=row.restarts)


def _backup_run(row: sa.Row[Any]) -> BackupRunRec:
    return BackupRunRec(id=row.id, env=row.env, source=row.source, status=row.status,
                        started_at=row.started_at, finished_at=row.finished_at, backup_id=row.backup_id,
                        detail=row.detail)


def _drill(row: sa.Row[Any]) -> DrillRec:
    return DrillRec(id=row.id, env=row.env, ok=bool(row.ok), started_at=row.started_at, detail=row.detail)
