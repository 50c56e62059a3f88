"""Reading the state database: ``StoreReader`` holds every query; ``Store`` adds the writes.

``open_store_readonly`` hands out a bare ``StoreReader`` on a read-only connection (one that never migrates):
for tools that look at a state database without owning it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Self

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from shipyard.primitives.store import schema as t
from shipyard.primitives.store.connect import safe_url, translated
from shipyard.primitives.store.records import (
    BackupRunRec,
    DeploymentRec,
    DrillRec,
    EnvironmentRec,
    EventRec,
    InstanceRec,
    ReleaseRec,
    StepRec,
)
from shipyard.primitives.store.rows import (
    to_backup_run,
    to_deployment,
    to_drill,
    to_environment,
    to_event,
    to_instance,
    to_release,
    to_step,
)


class StoreReader:
    """The queries of the state database. Every method is one short read transaction."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with translated(self._url, "reading"), self._engine.connect() as conn, conn.begin():
            yield conn

    # -- releases -------------------------------------------------------------------------------------

    def get_release(self, release_id: str) -> ReleaseRec | None:
        with self._read() as conn:
            row = conn.execute(t.releases.select().where(t.releases.c.id == release_id)).first()
        return None if row is None else to_release(row)

    def list_releases(self) -> list[ReleaseRec]:
        """Newest first."""
        query = t.releases.select().order_by(t.releases.c.created_at.desc(), t.releases.c.id.desc())
        with self._read() as conn:
            return [to_release(row) for row in conn.execute(query)]

    # -- environments ---------------------------------------------------------------------------------

    def get_environment(self, name: str) -> EnvironmentRec | None:
        with self._read() as conn:
            row = conn.execute(t.environments.select().where(t.environments.c.name == name)).first()
        return None if row is None else to_environment(row)

    def list_environments(self) -> list[EnvironmentRec]:
        with self._read() as conn:
            rows = conn.execute(t.environments.select().order_by(t.environments.c.name))
            return [to_environment(row) for row in rows]

    # -- deployments and the per-environment lock -------------------------------------------------------

    def get_deployment(self, deployment_id: int) -> DeploymentRec | None:
        with self._read() as conn:
            row = conn.execute(t.deployments.select().where(t.deployments.c.id == deployment_id)).first()
        return None if row is None else to_deployment(row)

    def list_deployments(self, env: str | None, limit: int = 50) -> list[DeploymentRec]:
        """Newest first; every environment's when ``env`` is None."""
        query = t.deployments.select().order_by(t.deployments.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.deployments.c.env == env)
        with self._read() as conn:
            return [to_deployment(row) for row in conn.execute(query)]

    def running_deployment(self, env: str) -> DeploymentRec | None:
        """The deployment holding ``env``'s lock, if any."""
        query = (t.deployments.select()
                 .join_from(t.deployments, t.locks, t.locks.c.deployment_id == t.deployments.c.id)
                 .where(t.locks.c.env == env))
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else to_deployment(row)

    # -- steps ----------------------------------------------------------------------------------------

    def list_steps(self, deployment_id: int) -> list[StepRec]:
        """In index order."""
        query = (t.steps.select().where(t.steps.c.deployment_id == deployment_id)
                 .order_by(t.steps.c.idx, t.steps.c.id))
        with self._read() as conn:
            return [to_step(row) for row in conn.execute(query)]

    # -- events ---------------------------------------------------------------------------------------

    def list_events(self, env: str | None = None, limit: int = 100,
                    kinds: Iterable[str] | None = None) -> list[EventRec]:
        """The ``limit`` newest events, newest first; every environment's when ``env`` is None."""
        query = t.events.select().order_by(t.events.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.events.c.env == env)
        if kinds is not None:
            query = query.where(t.events.c.kind.in_(list(kinds)))
        with self._read() as conn:
            return [to_event(row) for row in conn.execute(query)]

    # -- instances ------------------------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> InstanceRec | None:
        with self._read() as conn:
            row = conn.execute(t.instances.select().where(t.instances.c.id == instance_id)).first()
        return None if row is None else to_instance(row)

    def list_instances(self, env: str | None = None) -> list[InstanceRec]:
        i = t.instances
        query = i.select().order_by(i.c.env, i.c.release, i.c.idx, i.c.id)
        if env is not None:
            query = query.where(i.c.env == env)
        with self._read() as conn:
            return [to_instance(row) for row in conn.execute(query)]

    # -- backups and drills ---------------------------------------------------------------------------

    def list_backup_runs(self, env: str | None, limit: int = 50) -> list[BackupRunRec]:
        """Newest first."""
        query = t.backup_runs.select().order_by(t.backup_runs.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.backup_runs.c.env == env)
        with self._read() as conn:
            return [to_backup_run(row) for row in conn.execute(query)]

    def list_drills(self, env: str | None, limit: int = 50) -> list[DrillRec]:
        """Newest first."""
        query = t.drills.select().order_by(t.drills.c.id.desc()).limit(limit)
        if env is not None:
            query = query.where(t.drills.c.env == env)
        with self._read() as conn:
            return [to_drill(row) for row in conn.execute(query)]
