"""The notifier: what the evaluator's alerts and the control plane's lifecycle events send, to whom.

Decisions are pure (``engine.alerting.notify``); this class holds the groups between evaluations and
turns notifications into delivery rows. ``plan`` runs inside an evaluation and returns what to write
with the alert states (one transaction, ``Store.save_alert_states(..., notify=)``); ``committed`` adopts
it once written. ``event`` routes a lifecycle event (deployment, canary, backup, drill, approval) and
writes its deliveries at once. Sending is the outbox's (``control/notify_outbox.py``): nothing here waits
on a receiver, so a dead one never holds up a deploy or an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.control.specwatch import SpecWatch
from shipyard.engine.alerting.notify import (
    Alert,
    Group,
    Matcher,
    Notification,
    Silence,
    event_notifications,
    flush,
    ingest,
    labels_of,
)
from shipyard.engine.alerting.notify_payloads import title
from shipyard.engine.alerting.rules import Rule
from shipyard.engine.alerting.states import AlertState
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.notifications import NotificationsSpec
from shipyard.primitives.store import Store
from shipyard.primitives.store.notify import NotifyWrite, SilenceRec

log = logging.getLogger("shipyard.control.notify")

# Lifecycle events: kind → (alertname, severity). `event(env, kind, ...)` takes these kinds.
EVENTS: dict[str, tuple[str, str]] = {
    "deployment_started": ("DeploymentStarted", "info"),
    "deployment_succeeded": ("DeploymentSucceeded", "info"),
    "deployment_failed": ("DeploymentFailed", "critical"),
    "deployment_rolled_back": ("DeploymentRolledBack", "critical"),
    "canary_paused": ("CanaryPaused", "warning"),
    "canary_waiting": ("CanaryWaiting", "warning"),
    "approval_needed": ("ApprovalNeeded", "warning"),
    "backup_failed": ("BackupRunFailed", "critical"),
    "backup_missed": ("BackupRunMissed", "critical"),
    "drill_missed": ("DrillMissedObjectives", "critical"),
    "job_failed": ("ScheduledJobFailed", "critical"),
    # Notices for people (control/notices.py): maintenance 24 h ahead / start / end, incidents, reports.
    "notice": ("Notice", "info"),
    "test": ("ShipyardTest", "info"),
}
LifecycleHook = Callable[[str, str, str, Mapping[str, Any]], None]


def alert_of(rule: Rule, state: AlertState) -> Alert:
    """A firing rule as an alert: labels alertname, env, severity (and the expr's own labels)."""
    labels = {"alertname": rule.name, "env": rule.env, "severity": rule.severity, **dict(rule.expr.labels)}
    ann = {"summary": rule.render(state.value), "expr": rule.expr.text}
    if rule.runbook_url:
        ann["runbook_url"] = rule.runbook_url
    return Alert(labels_of(labels), labels_of(ann), state.fired_at or state.active_since or 0.0)


def silence_of(rec: SilenceRec) -> Silence:
    return Silence(rec.id, tuple(Matcher(m["name"], m["value"], bool(m.get("regex"))) for m in rec.matchers),
                   rec.starts_at, rec.ends_at, rec.comment, rec.created_by)


class Notifier:
    def __init__(self, *, store: Store, clock: Clock, specs: SpecWatch) -> None:
        self.store, self.clock, self.specs = store, clock, specs
        self.groups: dict[str, Group] | None = None  # loaded on the first plan
        self._planned: dict[str, Group] | None = None
        self.on_delivery: Callable[[], None] = lambda: None  # the outbox's wake-up

    def settings(self) -> NotificationsSpec:
        spec = self.specs.current()
        return spec.notifications if spec is not None else NotificationsSpec()

    def silences(self, now: float) -> list[Silence]:
        return [silence_of(s) for s in self.store.silences(active_at=now)]

    # -- alerts (inside an evaluation: a worker thread) ---------------------------------------------

    def plan(self, firing: Sequence[Alert], now: float) -> NotifyWrite:
        """Group the firing alerts, flush the groups that are due: what to save with the alert states."""
        ns = self.settings()
        if self.groups is None:
            self.groups = {d["key"]: Group.from_json(d) for d in self.store.notify_groups()}
        before = self.groups
        if not ns.receivers:  # nobody to tell: no groups either (receivers removed: theirs end)
            self._planned = {}
            return NotifyWrite(ended=list(before))
        groups = ingest(ns, before, firing, now)
        kept, ended, notes = flush(ns, groups, self.silences(now), now)
        self._planned = kept
        changed = [g.to_json() for k, g in kept.items() if before.get(k) != g]
        return NotifyWrite(changed, [k for k in ended if k in before],
                           [self.delivery(ns, n, now) for n in notes])

    def committed(self, w: NotifyWrite) -> None:
        if self._planned is not None:
            self.groups, self._planned = self._planned, None
        if w.deliveries:
            self.on_delivery()

    def delivery(self, ns: NotificationsSpec, note: Notification, now: float) -> dict[str, Any]:
        payload = note.to_json()
        payload["title"] = title(payload)
        payload["env"] = payload["common_labels"].get("env")
        # Alertmanager ends a forwarded alert unless it hears of it again: shipyard repeats an alert within
        # this; an event (never repeated) shows there for one group_interval.
        payload["hold_s"] = ns.group_interval + (ns.repeat_interval if note.kind == "alert" else 0.0)
        return {"receiver": note.receiver, "env": payload["env"], "kind": note.kind, "payload": payload,
                "created_at": now}

    # -- lifecycle events (on the event loop; never raises) ----------------------------------------

    def event(self, env: str, kind: str, summary: str, details: Mapping[str, Any] | None = None) -> int:
        """Route one lifecycle event (``EVENTS``) to its receivers now; the deliveries written. For other
        parts of the control plane: ``approval_needed`` is for approvals, ``test`` for ``notify test``."""
        try:
            return self._event(env, kind, summary, details or {})
        except Exception:  # a notification problem must never fail what it reports on
            log.exception("could not queue the %s notification for %s", kind, env)
            return 0

    def _alert(self, env: str, kind: str, summary: str, details: Mapping[str, Any], now: float) -> Alert:
        alertname, severity = EVENTS.get(kind, (kind, "info"))
        labels = {"alertname": alertname, "env": env, "severity": severity, "event": kind,
                  **{k: str(v) for k, v in details.get("labels", {}).items()}}
        # A notice for people (a report, maintenance, an incident) is titled by what it says.
        ann = {"title": summary if kind == "notice" else f"{alertname} on {env}", "summary": summary,
               **{k: str(v) for k, v in details.get("annotations", {}).items()}}
        if details.get("description"):
            ann["description"] = str(details["description"])
        return Alert(labels_of(labels), labels_of(ann), now, now, "firing")

    def _event(self, env: str, kind: str, summary: str, details: Mapping[str, Any]) -> int:
        now = self.clock.time()
        ns = self.settings()
        notes = event_notifications(ns, self._alert(env, kind, summary, details, now), self.silences(now), now)
        w = NotifyWrite(deliveries=[self.delivery(ns, n, now) for n in notes])
        self.store.save_notify(w)
        if notes:
            self.on_delivery()
        return len(notes)

    def lifecycle(self, env: str, kind: str, summary: str, details: Mapping[str, Any]) -> None:
        """The ``LifecycleHook`` the deploy and backup services call."""
        self.event(env, kind, summary, details)

    def test(self, receiver: str, env: str) -> int:
        """``shipyard notify test``: one test notification to ``receiver``, bypassing routes and silences."""
        now = self.clock.time()
        alert = self._alert(env, "test", f"a test notification from shipyard to {receiver}", {}, now)
        note = Notification(receiver, "event:test", "firing", (), (alert,), kind="event")
        delivery_id = self.store.add_delivery(self.delivery(self.settings(), note, now))
        self.on_delivery()
        return delivery_id


def canary_description(failure: Mapping[str, Any] | None) -> str:
    """The failing conditions of a rolled-back canary, their values and windows, one per line."""
    if not failure:
        return ""
    lines = [f"failed step: {failure.get('description') or failure.get('step')}"]
    for f in (failure.get("canary") or {}).get("failing", []):
        window = f.get("window")
        lines.append(f"condition {f.get('condition')}: value {f.get('value')} over window {window}"
                     + (f" ({f['reason']})" if f.get("reason") else ""))
    if failure.get("error") and len(lines) == 1:
        lines.append(str(failure["error"]))
    return "\n".join(lines)
