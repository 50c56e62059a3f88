"""The audit log, and deployments that wait for approval (``[environments.X.approval]``).

Mixed into ``Store``. A waiting deployment is a ``deployments`` row with status ``waiting_approval`` and no
lock: the environment's lock is taken only when it starts (``start_waiting``), in one transaction with the
status change, so an approval can never start it beside another running deployment.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shipyard.errors import LockHeld, NotFound, Refused
from shipyard.primitives.store import schema as t
from shipyard.primitives.store.records import WAITING, DeploymentRec, JSONDict
from shipyard.primitives.store.rows import to_deployment


@dataclass(frozen=True)
class AuditRec:
    id: int
    at: float
    performer: str
    action: str
    env: str | None
    target: str | None
    detail: JSONDict | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "performer": self.performer, "action": self.action,
                "env": self.env, "target": self.target, "detail": self.detail}


@dataclass(frozen=True)
class ApprovalRec:
    deployment_id: int
    identity: str
    decision: str  # "approve" | "reject"
    message: str | None
    at: float


class AuditStore:
    if TYPE_CHECKING:
        def _read(self) -> AbstractContextManager[sa.Connection]: ...

        def _write(self) -> AbstractContextManager[sa.Connection]: ...

        def running_deployment(self, env: str) -> DeploymentRec | None: ...

    # -- audit ----------------------------------------------------------------------------------------

    def add_audit(self, at: float, performer: str, action: str, env: str | None = None, target: str | None = None,
                  detail: JSONDict | None = None) -> None:
        with self._write() as conn:
            conn.execute(t.audit.insert().values(at=at, performer=performer, action=action, env=env,
                                                 target=target, detail=detail))

    def list_audit(self, env: str | None = None, since: float | None = None, limit: int = 200) -> list[AuditRec]:
        a = t.audit
        q = a.select().order_by(a.c.id.desc()).limit(limit)
        if env is not None:
            q = q.where(a.c.env == env)
        if since is not None:
            q = q.where(a.c.at >= since)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [AuditRec(r.id, r.at, r.performer, r.action, r.env, r.target, r.detail) for r in reversed(rows)]

    # -- waiting deployments and their approvals ------------------------------------------------------

    def create_waiting(self, env: str, *, kind: str, release: str, previous_release: str | None, strategy: str,
                       plan: list[JSONDict], created_at: float, detail: JSONDict) -> DeploymentRec:
        d = t.deployments
        with self._write() as conn:
            result = conn.execute(d.insert().values(
                env=env, kind=kind, release=release, previous_release=previous_release, strategy=strategy,
                status=WAITING, reason="waiting for approval", started_at=created_at, finished_at=None, plan=plan,
                detail=detail))
            pk = result.inserted_primary_key
            assert pk is not None
            row = conn.execute(d.select().where(d.c.id == int(pk[0]))).one()
        return to_deployment(row)

    def waiting_deployments(self) -> list[DeploymentRec]:
        d = t.deployments
        with self._read() as conn:
            rows = conn.execute(d.select().where(d.c.status == WAITING).order_by(d.c.id)).all()
        return [to_deployment(r) for r in rows]

    def add_approval(self, deployment_id: int, identity: str, decision: str, message: str | None,
                     at: float) -> list[ApprovalRec]:
        """Record one identity's decision (once per identity); the deployment's decisions so far."""
        try:
            with self._write() as conn:
                dep = conn.execute(t.deployments.select().where(t.deployments.c.id == deployment_id)).first()
                if dep is None:
                    raise NotFound(f"deployment {deployment_id} does not exist")
                if dep.status != WAITING:
                    raise Refused(f"deployment {deployment_id} is not waiting for approval (it is {dep.status})")
                conn.execute(t.approvals.insert().values(deployment_id=deployment_id, identity=identity,
                                                         decision=decision, message=message, at=at))
        except sa.exc.IntegrityError:
            raise Refused(f"{identity} has already decided on deployment {deployment_id}") from None
        return self.approvals_of(deployment_id)

    def approvals_of(self, deployment_id: int) -> list[ApprovalRec]:
        ap = t.approvals
        with self._read() as conn:
            rows = conn.execute(ap.select().where(ap.c.deployment_id == deployment_id).order_by(ap.c.id)).all()
        return [ApprovalRec(r.deployment_id, r.identity, r.decision, r.message, r.at) for r in rows]

    def start_waiting(self, deployment_id: int, at: float) -> DeploymentRec:
        """waiting_approval → running, taking the environment's lock (LockHeld when another runs)."""
        d = t.deployments
        try:
            with self._write() as conn:
                row = conn.execute(d.select().where(d.c.id == deployment_id)).one()
                updated = conn.execute(d.update().where(d.c.id == deployment_id, d.c.status == WAITING)
                                       .values(status="running", reason=None, started_at=at)).rowcount
                if not updated:
                    raise Refused(f"deployment {deployment_id} is not waiting for approval (it is {row.status})")
                conn.execute(t.locks.insert().values(env=row.env, deployment_id=deployment_id, acquired_at=at))
                row = conn.execute(d.select().where(d.c.id == deployment_id)).one()
        except sa.exc.IntegrityError:
            holder = self.running_deployment(str(row.env))
            what = f"deployment {holder.id} ({holder.kind} of {holder.release})" if holder else "a deployment"
            raise LockHeld(f"{what} is running on {row.env}: approved deployment {deployment_id} cannot start "
                           "now (approve again once it is done)") from None
        return to_deployment(row)

    def end_waiting(self, deployment_id: int, outcome: str, reason: str, at: float) -> DeploymentRec | None:
        """End a waiting deployment without starting it (rejected, expired, interrupted); None: not waiting."""
        d = t.deployments
        with self._write() as conn:
            updated = conn.execute(d.update().where(d.c.id == deployment_id, d.c.status == WAITING)
                                   .values(status=outcome, reason=reason, finished_at=at)).rowcount
            row = conn.execute(d.select().where(d.c.id == deployment_id)).first()
        return to_deployment(row) if updated and row is not None else None
