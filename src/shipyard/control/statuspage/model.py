"""What the public status page says, built from plain inputs (pure; the writer gathers them).

Statuspage's vocabulary throughout: a component is operational, degraded_performance, partial_outage,
major_outage or under_maintenance; an incident is investigating → identified → monitoring → resolved.
Nothing internal goes in: no release ids, hosts, error texts or alert rules — only component names,
their state, daily uptime and what people wrote in incidents and maintenance notices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.primitives.spec.faces import StatusPageSpec
from shipyard.primitives.store.incidents import IncidentRec, MaintenanceRec

DAY = 86400
DAYS = 90
COMPONENT_STATES = ("operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance")
INCIDENT_STATES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("none", "minor", "major", "critical")
# An incident's impact moves the components it names; automatic signals only ever reach "degraded".
_IMPACT_STATE = {"none": "operational", "minor": "degraded_performance", "major": "partial_outage",
                 "critical": "major_outage"}
_RANK = {s: i for i, s in enumerate(COMPONENT_STATES[:4])}
_INDICATOR = {"operational": "none", "degraded_performance": "minor", "partial_outage": "major",
              "major_outage": "critical"}
_DESCRIPTION = {"none": "All Systems Operational", "minor": "Minor Service Outage",
                "major": "Partial System Outage", "critical": "Major System Outage",
                "maintenance": "Service Under Maintenance"}


@dataclass(frozen=True)
class DayCount:
    """One UTC day of a component: minutes (or checks) counted and how many were bad; maintenance excluded."""

    day: int  # the day's start, epoch seconds
    total: float
    bad: float
    maintenance: bool = False

    @property
    def uptime(self) -> float | None:
        return None if self.total <= 0 else max(0.0, 1.0 - self.bad / self.total)


@dataclass(frozen=True)
class ComponentInputs:
    name: str
    env: str | None
    days: Sequence[DayCount]  # oldest first, any subset of the last 90 days
    degraded: bool = False  # a firing critical alert, or the latest synthetic check failed
    router_maintenance: bool = False  # the router answers 503 for its environment now


@dataclass(frozen=True)
class PageInputs:
    spec: StatusPageSpec
    now: float
    components: Sequence[ComponentInputs]
    incidents: Sequence[IncidentRec]
    maintenances: Sequence[MaintenanceRec]
    created_at: float = 0.0


@dataclass(frozen=True)
class Component:
    id: str
    name: str
    status: str
    days: tuple[tuple[int, float | None, bool], ...]  # (day start, uptime or None, maintenance that day)
    uptime: float | None  # over the 90 days
    env: str | None = None  # never rendered: it only ties scheduled maintenance to the component


@dataclass(frozen=True)
class Page:
    title: str
    now: float
    indicator: str
    description: str
    components: tuple[Component, ...]
    incidents: tuple[IncidentRec, ...]  # every incident of the last 90 days, newest first
    maintenances: tuple[MaintenanceRec, ...]  # upcoming and in progress, soonest first
    component_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def unresolved(self) -> tuple[IncidentRec, ...]:
        return tuple(i for i in self.incidents if i.resolved_at is None)


def component_id(name: str) -> str:
    """A stable id from the name (Statuspage's ids are opaque strings)."""
    import hashlib

    return hashlib.sha256(name.encode()).hexdigest()[:12]


def maintenance_status(m: MaintenanceRec, now: float) -> str:
    """Statuspage's scheduled-maintenance states."""
    if now < m.starts_at:
        return "scheduled"
    return "in_progress" if now < m.ends_at else "completed"


def in_maintenance(env: str | None, maintenances: Sequence[MaintenanceRec], now: float) -> bool:
    return env is not None and any(m.env == env and m.starts_at <= now < m.ends_at for m in maintenances)


def build_page(inputs: PageInputs) -> Page:
    now = inputs.now
    cutoff = now - DAYS * DAY
    incidents = tuple(i for i in inputs.incidents if i.resolved_at is None or i.updated_at >= cutoff)
    components: list[Component] = []
    for comp in inputs.components:
        status = "operational"
        for inc in incidents:
            if inc.resolved_at is None and comp.name in inc.components:
                status = _worse(status, _IMPACT_STATE.get(inc.impact, "degraded_performance"))
        if comp.degraded:
            status = _worse(status, "degraded_performance")
        if comp.router_maintenance or in_maintenance(comp.env, inputs.maintenances, now):
            status = "under_maintenance"
        components.append(_component(comp, status, now))
    worst = max((c.status for c in components if c.status in _RANK), key=_RANK.__getitem__, default="operational")
    indicator = _INDICATOR[worst]
    if indicator == "none" and any(c.status == "under_maintenance" for c in components):
        indicator = "maintenance"
    upcoming = tuple(m for m in inputs.maintenances if m.ends_at > now)
    return Page(title=inputs.spec.title, now=now, indicator=indicator, description=_DESCRIPTION[indicator],
                components=tuple(components), incidents=incidents, maintenances=upcoming,
                component_ids={c.name: c.id for c in components})


def _worse(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b


def _component(comp: ComponentInputs, status: str, now: float) -> Component:
    today = int(now // DAY) * DAY
    by_day = {d.day: d for d in comp.days}
    days: list[tuple[int, float | None, bool]] = []
    total = bad = 0.0
    for k in range(DAYS - 1, -1, -1):
        start = today - k * DAY
        d = by_day.get(start)
        if d is None:
            days.append((start, None, False))
            continue
        days.append((start, d.uptime, d.maintenance))
        total += d.total
        bad += d.bad
    uptime = None if total <= 0 else max(0.0, 1.0 - bad / total)
    return Component(component_id(comp.name), comp.name, status, tuple(days), uptime, comp.env)


def day_counts(minutes: Sequence[tuple[int, float, float]], maintenance: Sequence[tuple[float, float]]
               ) -> list[DayCount]:
    """Per UTC day from (minute start, requests or checks, bad ones): uptime is the good share of the day's
    requests (or checks); minutes inside a maintenance window are left out (and the day marked)."""
    days: dict[int, list[float]] = {}
    marked: set[int] = set()
    for t, total, bad in minutes:
        day = int(t // DAY) * DAY
        if any(a <= t < b for a, b in maintenance):
            marked.add(day)
            continue
        acc = days.setdefault(day, [0.0, 0.0])
        acc[0] += total
        acc[1] += bad
    for a, b in maintenance:
        d = int(a // DAY) * DAY
        while d < b:
            marked.add(d)
            d += DAY
    out = [DayCount(day, v[0], v[1], day in marked) for day, v in days.items()]
    out += [DayCount(day, 0.0, 0.0, True) for day in marked if day not in days]
    return sorted(out, key=lambda d: d.day)


def to_json(page: Page) -> dict[str, Any]:
    """The page as one document (what the files are rendered from)."""
    return {"title": page.title, "indicator": page.indicator, "description": page.description,
            "components": [{"name": c.name, "status": c.status, "uptime": c.uptime} for c in page.components],
            "incidents": [{"id": i.id, "status": i.status} for i in page.incidents],
            "maintenances": [m.id for m in page.maintenances]}
