"""Rows of the state database's tables → the frozen records of ``records``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

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


def to_release(row: sa.Row[Any]) -> ReleaseRec:
    return ReleaseRec(id=row.id, commit=row.commit_sha, ref=row.ref, message=row.message, author=row.author,
                      created_at=row.created_at, build_duration_s=row.build_duration_s,
                      content_hash=row.content_hash, spec=row.spec, secrets_version=row.secrets_version,
                      build_log=row.build_log, status=row.status)


def to_environment(row: sa.Row[Any]) -> EnvironmentRec:
    return EnvironmentRec(name=row.name, current_release=row.current_release,
                          previous_release=row.previous_release, routing=row.routing,
                          secrets_version=row.secrets_version, updated_at=row.updated_at)


def to_deployment(row: sa.Row[Any]) -> DeploymentRec:
    return DeploymentRec(id=row.id, env=row.env, kind=row.kind, release=row.release,
                         previous_release=row.previous_release, strategy=row.strategy, status=row.status,
                         reason=row.reason, started_at=row.started_at, finished_at=row.finished_at,
                         plan=row.plan, detail=row.detail)


def to_step(row: sa.Row[Any]) -> StepRec:
    return StepRec(id=row.id, deployment_id=row.deployment_id, index=row.idx, name=row.name,
                   status=row.status, started_at=row.started_at, duration_s=row.duration_s, detail=row.detail)


def to_event(row: sa.Row[Any]) -> EventRec:
    return EventRec(id=row.id, env=row.env, kind=row.kind, message=row.message, data=row.data, at=row.at)


def to_instance(row: sa.Row[Any]) -> InstanceRec:
    return InstanceRec(id=row.id, env=row.env, release=row.release, index=row.idx, port=row.port, pid=row.pid,
                       create_time=row.create_time, role=row.role, state=row.state, started_at=row.started_at,
                       restarts=row.restarts, process=row.process)


def to_backup_run(row: sa.Row[Any]) -> BackupRunRec:
    return BackupRunRec(id=row.id, env=row.env, source=row.source, status=row.status,
                        started_at=row.started_at, finished_at=row.finished_at, backup_id=row.backup_id,
                        detail=row.detail)


def to_drill(row: sa.Row[Any]) -> DrillRec:
    return DrillRec(id=row.id, env=row.env, ok=bool(row.ok), started_at=row.started_at, detail=row.detail)
