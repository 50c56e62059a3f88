"""The alert state machine, with Prometheus' semantics for ``for`` and ``keep_firing_for``.

    inactive ──true──▶ pending ──true for `for`──▶ firing ──false (after `keep_firing_for`)──▶ resolved
       ▲                 │ false                      ▲                                          │ true
       └─────────────────┘                            └── `for` = 0: straight from inactive      ▼ pending

A value that is missing (no traffic, no data) counts as "not true", as an empty PromQL result does.
``step`` is pure: it takes the previous state, the value and the time, and returns the new state and the
transition (None when the state did not change), which the control plane persists together.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from shipyard.engine.alerting.rules import Rule

StateName = Literal["inactive", "pending", "firing", "resolved"]


@dataclass(frozen=True)
class AlertState:
    rule: str
    env: str
    state: StateName = "inactive"
    active_since: float | None = None  # when the expression became true (pending, firing)
    fired_at: float | None = None
    keep_firing_since: float | None = None  # firing, expression false since then
    resolved_at: float | None = None
    value: float | None = None
    changed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "env": self.env, "state": self.state, "active_since": self.active_since,
                "fired_at": self.fired_at, "keep_firing_since": self.keep_firing_since,
                "resolved_at": self.resolved_at, "value": self.value, "changed_at": self.changed_at}

    def same_but_value(self, other: AlertState) -> bool:
        """Equal apart from ``value`` (what changes at every evaluation and is not worth a write)."""
        return (self.state, self.active_since, self.fired_at, self.keep_firing_since, self.resolved_at,
                self.changed_at, self.rule, self.env) == (
                other.state, other.active_since, other.fired_at, other.keep_firing_since, other.resolved_at,
                other.changed_at, other.rule, other.env)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AlertState:
        return cls(d["rule"], d["env"], d.get("state", "inactive"), d.get("active_since"), d.get("fired_at"),
                   d.get("keep_firing_since"), d.get("resolved_at"), d.get("value"), d.get("changed_at"))


def step(rule: Rule, prev: AlertState | None, value: float | None, now: float
         ) -> tuple[AlertState, StateName | None]:
    s = prev if prev is not None else AlertState(rule.name, rule.env)
    true = value is not None and rule.expr.holds(value)
    if s.value != value:
        s = replace(s, value=value)
    if true:
        if s.state in ("inactive", "resolved"):
            s = replace(s, state="pending", active_since=now, fired_at=None, keep_firing_since=None,
                        resolved_at=None, changed_at=now)
        if s.state == "firing":
            return replace(s, keep_firing_since=None), None
        assert s.active_since is not None
        if now - s.active_since >= rule.for_s:
            return replace(s, state="firing", fired_at=now, changed_at=now), "firing"
        return s, ("pending" if s.changed_at == now else None)
    if s.state == "pending":
        return replace(s, state="inactive", active_since=None, changed_at=now), "inactive"
    if s.state == "firing":
        since = s.keep_firing_since if s.keep_firing_since is not None else now
        if now - since < rule.keep_firing_for_s:
            return replace(s, keep_firing_since=since), None
        return replace(s, state="resolved", resolved_at=now, keep_firing_since=None, changed_at=now), "resolved"
    return s, None
