"""Runs of scheduled jobs (``[jobs]``, revision 0007): one row per run, with its exit code, duration and
the tail of its output. Mixed into ``Store``, which provides the connections."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.primitives.store import schema as t

# running → succeeded | failed | timed_out | replaced; skipped: not started (concurrency = "forbid").
JOB_STATUSES = ("running", "succeeded", "failed", "timed_out", "replaced", "skipped")


@dataclass(frozen=True)
class JobRunRec:
    id: int
    env: str
    job: str
    release: str | None
    trigger: str  # schedule | manual
    scheduled_for: float | None
    status: str
    exit_code: int | None
    started_at: float
    finished_at: float | None
    output_tail: str | None
    reason: str | None

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "env": self.env, "job": self.job, "release": self.release, "trigger": self.trigger,
                "scheduled_for": self.scheduled_for, "status": self.status, "exit_code": self.exit_code,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "duration_s": round(self.duration_s, 3) if self.duration_s is not None else None,
                "output_tail": self.output_tail, "reason": self.reason}


def _rec(r: sa.Row[Any]) -> JobRunRec:
    return JobRunRec(r.id, r.env, r.job, r.release, r.trigger, r.scheduled_for, r.status, r.exit_code, r.started_at,
                     r.finished_at, r.output_tail, r.reason)


class JobRunStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

    def add_job_run(self, env: str, job: str, *, release: str | None, trigger: str, scheduled_for: float | None,
                    status: str, started_at: float, reason: str | None = None) -> int:
        with self._write() as conn:
            res = conn.execute(t.job_runs.insert().values(
                env=env, job=job, release=release, trigger=trigger, scheduled_for=scheduled_for, status=status,
                started_at=started_at, finished_at=started_at if status == "skipped" else None, reason=reason))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def finish_job_run(self, run_id: int, *, status: str, exit_code: int | None, finished_at: float,
                       output_tail: str | None, reason: str | None = None) -> None:
        with self._write() as conn:
            conn.execute(t.job_runs.update().where(t.job_runs.c.id == run_id).values(
                status=status, exit_code=exit_code, finished_at=finished_at, output_tail=output_tail, reason=reason))

    def list_job_runs(self, env: str | None = None, job: str | None = None, limit: int = 20) -> list[JobRunRec]:
        """Newest first."""
        q = t.job_runs.select().order_by(t.job_runs.c.id.desc()).limit(limit)
        if env is not None:
            q = q.where(t.job_runs.c.env == env)
        if job is not None:
            q = q.where(t.job_runs.c.job == job)
        with self._read() as conn:
            return [_rec(r) for r in conn.execute(q).all()]

    def last_job_run(self, env: str, job: str, *, trigger: str | None = None) -> JobRunRec | None:
        q = t.job_runs.select().where(t.job_runs.c.env == env, t.job_runs.c.job == job)
        if trigger is not None:
            q = q.where(t.job_runs.c.trigger == trigger)
        with self._read() as conn:
            row = conn.execute(q.order_by(t.job_runs.c.id.desc()).limit(1)).first()
        return _rec(row) if row is not None else None
