"""Deployments that wait for approval (``[environments.X.approval]``, docs/access.md).

A deploy to such an environment is prepared when asked for, recorded ``waiting_approval`` (no lock held)
and kept here with its plan; approvals from ``required`` distinct identities start exactly that plan. At
the start the manual lock, the deploy windows and the environment's lock are checked again (they may have
changed while it waited): a refusal is answered to the approver and the deployment keeps waiting. A
rejection, or no decision within ``timeout``, ends it ``rejected`` / ``expired``; nothing that serves is
touched. Rollbacks and aborts never come here.

A control plane restart keeps what waited: the request (its commit, not a branch that may move), who
asked, the override, the expiry and a digest of the plan are kept in the row; ``restore`` plans the same
request again at start and keeps it waiting (with its approvals so far) only when it is the very plan
asked for — same release, same digest. Otherwise (shipyard.toml, the environment's serving release or the
release catalogue changed) it ends ``interrupted`` saying why: nobody approves a plan they did not see.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from shipyard.control.deploys.inputs import DeployRequest
from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.service import DeployService
from shipyard.control.events import EventLog
from shipyard.engine.rollout.plan import Plan
from shipyard.engine.rollout.windows import check as check_window
from shipyard.errors import NotFound, NotPermitted, Refused, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import DeploymentRec, Store

log = logging.getLogger("shipyard.control")
HEARTBEAT = 5.0  # a waiting CLI hears from us this often (its idle timeout is longer)
SYSTEM = "shipyard (approval timeout)"
Event = dict[str, Any]


@dataclass
class Waiting:
    dep: DeploymentRec
    plan: Plan
    requester: str  # the identity that asked (prevent_self_review compares names)
    performer: str
    override: str | None
    expires_at: float
    approved_by: list[str] = field(default_factory=list)
    listeners: list[asyncio.Queue[Event | None]] = field(default_factory=list)

    def publish(self, event: Event | None) -> None:
        for q in self.listeners:
            q.put_nowait(event)

    def to_json(self) -> Event:
        assert self.plan.approval is not None
        return {"event": "waiting_approval", "deployment": self.dep.id, "env": self.plan.env,
                "release": self.plan.release, "requested_by": self.performer, "approvals": list(self.approved_by),
                "required": self.plan.approval.required, "expires_at": self.expires_at}


class ApprovalBook:
    def __init__(self, *, deploys: DeployService, store: Store, clock: Clock, events: EventLog,
                 registry: Registry) -> None:
        self.deploys, self.store, self.clock, self.events, self.registry = deploys, store, clock, events, registry
        self._waiting: dict[int, Waiting] = {}

    def restore(self) -> tuple[list[int], list[int]]:
        """At start: each deployment that waited before the restart is planned again from its kept request;
        (kept waiting, ended ``interrupted``)."""
        kept, ended = [], []
        for dep in self.store.waiting_deployments():
            try:
                w = self._replan(dep)
            except (ShipyardError, KeyError, TypeError, ValueError) as err:  # a row it cannot read: ended too
                reason = f"the control plane restarted while it waited for approval and {err}; deploy again"
                if self.store.end_waiting(dep.id, "interrupted", reason, self.clock.time()):
                    self.events.add(dep.env, "approval", f"deployment {dep.id} interrupted: {reason}")
                    ended.append(dep.id)
                continue
            self._waiting[dep.id] = w
            kept.append(dep.id)
            self.events.add(dep.env, "approval", f"deployment {dep.id} ({dep.release}) waits for approval again "
                            f"after the restart ({len(w.approved_by)} approval(s) so far)")
        return kept, ended

    def _replan(self, dep: DeploymentRec) -> Waiting:
        kept = (dep.detail or {}).get("waiting")
        if not isinstance(kept, dict):
            raise Refused("its request was not kept (asked for before this version)")
        req = DeployRequest(dep.kind, dep.env, **kept["request"])  # type: ignore[arg-type]
        plan = self.deploys.prepare(req, self.deploys.specs.load())
        if plan.release != dep.release:
            raise Refused(f"it would now deploy {plan.release}, not {dep.release}")
        if plan.approval is None:
            raise Refused(f"{dep.env} no longer asks for approval")
        self.deploys.check_promotion(plan)  # its record moves with time: judged again, not digested
        if plan_digest(plan) != kept["digest"]:
            raise Refused("its plan is no longer the one asked for (shipyard.toml or the environment changed)")
        approved = [a.identity for a in self.store.approvals_of(dep.id) if a.decision == "approve"]
        return Waiting(dep, plan, str(kept["requester"]), str(kept["performer"]), kept.get("override"),
                       float(kept["expires_at"]), approved_by=approved)

    def create(self, plan: Plan, requester: str, performer: str, override: str | None,
               request: DeployRequest | None = None) -> Waiting:
        """``request``: what was asked for, kept so a restart can plan it again (None: not kept)."""
        assert plan.approval is not None
        now = self.clock.time()
        expires = now + plan.approval.timeout
        detail: dict[str, Any] = {"performer": performer, "approval": plan.approval.to_json()}
        if request is not None:
            detail["waiting"] = {"request": replan_request(request, plan), "digest": plan_digest(plan),
                                 "requester": requester, "performer": performer, "override": override,
                                 "expires_at": expires}
        dep = self.store.create_waiting(plan.env, kind=plan.kind, release=plan.release,
                                        previous_release=plan.previous, strategy=plan.strategy,
                                        plan=[s.to_json() for s in plan.steps], created_at=now, detail=detail)
        w = Waiting(dep, plan, requester, performer, override, expires)
        self._waiting[dep.id] = w
        self.store.add_audit(now, performer, "deploy_requested", plan.env, f"deployment {dep.id}",
                             {"release": plan.release, "approval": plan.approval.to_json()})
        self.events.add(plan.env, "approval", f"deployment {dep.id} ({plan.release}) by {performer} waits for "
                        f"{plan.approval.required} approval(s)")
        # The receivers hear of it (docs/alerts.md, lifecycle events): approvers need not watch a terminal.
        notify = getattr(self.deploys, "notify", None)  # None in unit tests without a deploy service
        if notify is not None:
            notify(plan.env, "approval_needed",
                   f"{plan.env}: deployment {dep.id} of {plan.release} by {performer} waits for "
                   f"{plan.approval.required} approval(s) (shipyard approve {dep.id})",
                   {"deployment": dep.id, "release": plan.release, "performer": performer})
        return w

    async def follow(self, w: Waiting, detach: bool) -> AsyncIterator[Event]:
        """The plan, the waiting line, then (unless ``detach``) its approvals and the deployment's events."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        w.listeners.append(queue)  # before the first yield: nothing decided meanwhile is missed
        try:
            yield {"event": "plan", "plan": w.plan.to_json()}
            yield w.to_json()
            if detach:
                return
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except TimeoutError:
                    item = w.to_json() if w.dep.id in self._waiting else {"event": "heartbeat"}
                if item is None:
                    return
                yield item
        finally:
            w.listeners.remove(queue)

    def decide(self, deployment: int, name: str, performer: str, decision: str, message: str | None) -> Event:
        """One identity approves or rejects; enough approvals start the deployment."""
        w = self._waiting.get(deployment)
        if w is None:
            dep = self.store.get_deployment(deployment)
            if dep is None:
                raise NotFound(f"deployment {deployment} does not exist")
            raise Refused(f"deployment {deployment} is not waiting for approval (it is {dep.status})")
        assert w.plan.approval is not None
        if decision == "approve" and w.plan.approval.prevent_self_review and name == w.requester:
            raise NotPermitted(f"{name} asked for deployment {deployment}: it needs an approval from another "
                               "identity (prevent_self_review)")
        retry = decision == "approve" and name in w.approved_by  # approved, could not start: try again
        if not retry:
            self.store.add_approval(deployment, name, decision, message, self.clock.time())
            self.store.add_audit(self.clock.time(), performer, decision, w.plan.env, f"deployment {deployment}",
                                 {"message": message, "release": w.plan.release})
        if decision == "reject":
            self._end(w, "rejected", f"rejected by {performer}" + (f": {message}" if message else ""))
            return {"deployment": deployment, "decision": "reject", "status": "rejected"}
        if not retry:
            w.approved_by.append(name)
        w.publish(w.to_json())
        self.events.add(w.plan.env, "approval", f"deployment {deployment} approved by {performer} "
                        f"({len(w.approved_by)}/{w.plan.approval.required})")
        started = len(w.approved_by) >= w.plan.approval.required and self._start(w)
        return {"deployment": deployment, "decision": "approve", "approvals": list(w.approved_by),
                "required": w.plan.approval.required, "status": "running" if started else "waiting_approval"}

    def _start(self, w: Waiting) -> bool:
        """Start the approved plan, checking again what may have changed while it waited (raises Refused)."""
        plan = w.plan
        envspec = plan.spec.env(plan.env)
        plan = replace(plan, window=check_window(envspec.windows, self.clock.time()))
        try:
            self.deploys.check_manual_lock(plan)
            self.deploys.check_window(plan, w.override, w.performer)
            self.deploys.check_free(plan.env)
            dep = self.store.start_waiting(w.dep.id, self.clock.time())
        except Refused as err:
            w.publish({"event": "approval_blocked", "deployment": w.dep.id, "message": str(err)})
            raise Refused(f"deployment {w.dep.id} is approved but cannot start now, checked again at its start: "
                          f"{err} (it keeps waiting: `shipyard approve {w.dep.id}` again to retry)") from None
        del self._waiting[w.dep.id]

        async def runner() -> None:
            try:
                result = await self.deploys.run(plan, w.publish, w.performer, deployment=dep)
                w.publish({"event": "result", "result": result})
            except ShipyardError as err:
                w.publish({"event": "error", "error": str(err), "exit_code": err.exit_code})
            except Exception as exc:  # a bug must still end the followers' streams
                log.exception("approved deployment crashed")
                w.publish({"event": "error", "error": f"internal error: {exc!r} (see .shipyard/logs/control.log)"})
            finally:
                self.registry.release(plan.env, task)
                w.publish(None)

        task = asyncio.get_running_loop().create_task(runner(), name=f"deploy-{plan.env}")
        self.registry.hold(plan.env, task, "an approved deployment")
        w.publish({"event": "approved", "deployment": w.dep.id, "approvals": list(w.approved_by)})
        return True

    def expire_due(self) -> list[int]:
        """End every deployment whose approval timeout has passed (``expired``)."""
        now = self.clock.time()
        due = [w for w in self._waiting.values() if now >= w.expires_at]
        for w in due:
            self.store.add_audit(now, SYSTEM, "expire", w.plan.env, f"deployment {w.dep.id}",
                                 {"release": w.plan.release, "approvals": list(w.approved_by)})
            self._end(w, "expired", f"no decision within {w.expires_at - w.dep.started_at:g}s "
                      f"({len(w.approved_by)} of {w.plan.approval.required if w.plan.approval else 0} approvals)")
        return [w.dep.id for w in due]

    async def expire_forever(self, every: float = 1.0) -> None:
        while True:
            await self.clock.sleep(every)
            self.expire_due()

    def _end(self, w: Waiting, outcome: str, reason: str) -> None:
        self._waiting.pop(w.dep.id, None)
        self.store.end_waiting(w.dep.id, outcome, reason, self.clock.time())
        self.events.add(w.plan.env, "approval", f"deployment {w.dep.id} {outcome}: {reason}")
        w.publish({"event": "result", "result": {
            "deployment": w.dep.id, "env": w.plan.env, "kind": w.plan.kind, "outcome": outcome,
            "release": w.plan.release, "previous_release": w.plan.previous, "reason": reason, "rollback": None,
            "watch": None, "duration_s": round(self.clock.time() - w.dep.started_at, 3), "steps": []}})
        w.publish(None)

    def waiting(self) -> list[Event]:
        return [w.to_json() for w in self._waiting.values()]


def replan_request(req: DeployRequest, plan: Plan) -> dict[str, Any]:
    """The request to plan again after a restart: by the commit planned, not a ref that may have moved."""
    if req.from_env:
        chosen: dict[str, Any] = {"from_env": req.from_env}
    elif req.release:
        chosen = {"release": req.release}
    else:
        chosen = {"ref": plan.commit.sha}
    return {**chosen, "strategy": req.strategy}


def plan_digest(plan: Plan) -> str:
    """What an approver approves — the plan as ``--plan`` shows it and how the release is launched — without
    what moves with time alone (estimates; the window verdict, checked again at the start; the promotion
    record, judged again by ``restore``) or whether the release still had to be built."""
    doc = plan.to_json()
    for key in ("estimated_duration_s", "window", "promotion", "build"):
        doc.pop(key, None)
    doc["steps"] = [{k: v for k, v in st.items() if k != "estimate_s"} for st in doc["steps"] if st["kind"] != "build"]
    doc["launch"] = plan.launch.to_json()
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
