"""Control API routes of the faces: incidents (``shipyard incident``), maintenance (``shipyard
maintenance``) and reports (``shipyard report``). Every change wakes the status-page writer, so the
public page shows it within a second or so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shipyard.control.httpserver import Handler
from shipyard.control.maintenance import MaintenanceService
from shipyard.control.notices import Notice, Notices
from shipyard.control.reports import ReportService
from shipyard.control.statuspage.feeds import iso
from shipyard.control.statuspage.model import IMPACTS, INCIDENT_STATES, maintenance_status
from shipyard.errors import BadInput, NotPermitted
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec, parse_duration
from shipyard.primitives.store import Store
from shipyard.primitives.store.incidents import IncidentRec, MaintenanceRec


class Caller(Protocol):
    """Who calls (control/access's Identity): recorded as the performer."""

    @property
    def performer(self) -> str: ...

    def may_env(self, env: str) -> bool: ...


@dataclass(frozen=True)
class FacesContext:
    store: Store
    clock: Clock
    load_spec: Callable[[], Spec]
    maintenance: MaintenanceService
    notices: Notices
    reports: ReportService
    changed: Callable[[], None]  # wakes the status-page writer
    status_url: Callable[[], str | None]
    dashboard_link: Callable[[Any], str | None] = lambda who: None  # a one-time login link for the caller


def faces_routes(ctx: FacesContext) -> dict[tuple[str, str], Handler[Caller]]:
    async def incident(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        action = body.get("action")
        now = ctx.clock.time()
        message = _text(body, "message", required=True)
        if action == "open":
            spec = ctx.load_spec()
            names = _components(spec, body.get("components"))
            impact = _choice(body, "impact", IMPACTS, "major")
            title = _text(body, "title") or message
            _scoped(who, ctx.load_spec(), names)
            iid = ctx.store.open_incident(title[:200], impact, names, message, now, who.performer)
        elif action in ("update", "resolve"):
            iid = _id(body)
            _scoped(who, ctx.load_spec(), list(ctx.store.incident(iid).components))
            status = "resolved" if action == "resolve" else _choice(body, "status", INCIDENT_STATES, None)
            new_impact = _choice(body, "impact", IMPACTS, None) if body.get("impact") else None
            ctx.store.update_incident(iid, status, message, now, who.performer, new_impact)
        else:
            raise BadInput(f"action: expected open, update or resolve, got {action!r}")
        rec = ctx.store.incident(iid)
        ctx.store.add_audit(now, who.performer, f"incident_{action}", None, str(iid), {"status": rec.status})
        ctx.notices.send(Notice(f"incident_{action}", "", f"{rec.title}: {rec.status}", message, now,
                                {"incident": iid, "impact": rec.impact, "components": list(rec.components)}))
        ctx.changed()
        return incident_json(rec)

    async def incidents(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        return [incident_json(i) for i in ctx.store.incidents(unresolved=q.get("open") == "1")][:200]

    async def maintenance(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        action = body.get("action")
        now = ctx.clock.time()
        if action == "cancel":
            mid = _id(body)
            for m in ctx.store.maintenances():
                if m.id == mid and not who.may_env(m.env):
                    raise NotPermitted(f"maintenance {mid} is of environment {m.env!r}, which this token may not act on")
            rec = ctx.maintenance.cancel(mid)
            ctx.store.add_audit(now, who.performer, "maintenance_cancel", rec.env, str(rec.id), None)
            return maintenance_json(rec, now)
        env = body.get("env")
        if not isinstance(env, str) or not env:
            raise BadInput("--env is required")
        ctx.load_spec().env(env)  # unknown environment → clear error
        allow = body.get("allow") or []
        if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
            raise BadInput("--allow: expected networks such as 10.0.0.0/8")
        if action == "on":
            rec = await ctx.maintenance.on(env, _text(body, "message"), allow, who.performer)
            out: Any = maintenance_json(rec, now)
        elif action == "off":
            out = {"env": env, "ended": [maintenance_json(m, now) for m in await ctx.maintenance.off(env, who.performer)]}
        elif action == "schedule":
            rec = ctx.maintenance.schedule(env, parse_at(body.get("at")), _duration(body.get("for")),
                                           _text(body, "message", required=True), bool(body.get("switch")),
                                           allow, who.performer)
            out = maintenance_json(rec, now)
        else:
            raise BadInput(f"action: expected on, off, schedule or cancel, got {action!r}")
        ctx.store.add_audit(now, who.performer, f"maintenance_{action}", env, None, {"allow": allow})
        ctx.changed()
        return out

    async def maintenances(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        now = ctx.clock.time()
        return [maintenance_json(m, now) for m in ctx.store.maintenances(since=now)
                if not q.get("env") or m.env == q["env"]]

    async def status_page(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        return {"url": ctx.status_url()}

    async def dashboard(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        link = ctx.dashboard_link(who)
        if link is None:
            raise BadInput("the dashboard is not running")
        return {"login_link": link, "url": link.split("/login")[0] + "/", "expires_in_s": 300}

    async def report(body: dict[str, Any], q: dict[str, str], who: Caller) -> Any:
        env = q.get("env") or ""
        if not env:
            raise BadInput("--env is required")
        spec = ctx.load_spec()
        spec.env(env)
        return ctx.reports.build(spec, env, q.get("period") or "24h")

    return {
        ("POST", "/v1/incident"): incident,
        ("GET", "/v1/incidents"): incidents,
        ("POST", "/v1/maintenance"): maintenance,
        ("GET", "/v1/maintenance"): maintenances,
        ("GET", "/v1/statuspage"): status_page,
        ("GET", "/v1/report"): report,
        ("POST", "/v1/dashboard/link"): dashboard,
    }


def incident_json(i: IncidentRec) -> dict[str, Any]:
    return {"id": i.id, "title": i.title, "impact": i.impact, "status": i.status, "components": list(i.components),
            "created_at": i.created_at, "resolved_at": i.resolved_at, "performer": i.performer,
            "updates": [{"status": u.status, "body": u.body, "at": u.at, "at_iso": iso(u.at)} for u in i.updates]}


def maintenance_json(m: MaintenanceRec, now: float) -> dict[str, Any]:
    return {"id": m.id, "env": m.env, "message": m.message, "starts_at": m.starts_at, "ends_at": m.ends_at,
            "starts": iso(m.starts_at), "ends": iso(m.ends_at), "switch": m.switch, "allow": list(m.allow),
            "notified": list(m.notified), "switched": m.switched, "status": maintenance_status(m, now),
            "performer": m.performer}


def parse_at(value: Any) -> float:
    if not isinstance(value, str) or not value:
        raise BadInput("--at is required: a time such as 2026-12-03T02:00+09:00")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(f"--at: not an ISO 8601 time: {value[:40]!r} (e.g. 2026-12-03T02:00+09:00)") from None
    if when.tzinfo is None:
        raise BadInput(f"--at: {value[:40]!r} has no UTC offset; add one such as +09:00 or Z")
    return when.timestamp()


def _duration(value: Any) -> float:
    try:
        return parse_duration(value if isinstance(value, str | int | float) else "")
    except ValueError as exc:
        raise BadInput(f"--for: {exc}") from None


def _components(spec: Spec, value: Any) -> list[str]:
    if spec.status_page is None:
        raise BadInput("incidents name status-page components: add a [status_page] with components first")
    known = [c.name for c in spec.status_page.components]
    names = value if isinstance(value, list) else []
    if not names or not all(isinstance(n, str) for n in names):
        raise BadInput(f"--component is required (one of: {', '.join(known) or 'none defined'})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BadInput(f"--component: unknown component {unknown[0]!r} (known: {', '.join(known)})")
    return list(dict.fromkeys(names))


def _scoped(who: Caller, spec: Spec, names: list[str]) -> None:
    """A token limited to some environments may touch only incidents of their components."""
    page = spec.status_page
    for name in names:
        comp = page.component(name) if page is not None else None
        if comp is not None and comp.env is not None and not who.may_env(comp.env):
            raise NotPermitted(f"component {name!r} is environment {comp.env!r}'s, which this token may not act on")


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = body.get(key) or default
    if value not in allowed:
        raise BadInput(f"--{key}: expected one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _text(body: dict[str, Any], key: str, required: bool = False) -> str:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{key}: expected a string")
    if required and not value:
        raise BadInput(f"-m/--{key} is required (it is shown on the public status page)")
    return (value or "")[:2000]


def _id(body: dict[str, Any]) -> int:
    value = body.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput("ID: expected the incident's (or maintenance's) number")
    return value
