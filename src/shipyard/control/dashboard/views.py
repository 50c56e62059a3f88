"""What each dashboard page shows, gathered through the API routes the CLI uses (``ApiCalls``: same
handlers, same gate) and, for the overview's last hour, straight from the metric history; rendering is
in the page modules (pure)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from shipyard.control.access.identities import Identity
from shipyard.control.dashboard.calls import ApiCalls
from shipyard.control.dashboard.charts_page import chart_series, charts_page
from shipyard.control.dashboard.history_page import history_page
from shipyard.control.dashboard.live import StepClock, live_env
from shipyard.control.dashboard.live_page import live_page
from shipyard.control.dashboard.ops_pages import alerts_page, backups_page
from shipyard.control.dashboard.pages import overview
from shipyard.control.dashboard.traffic import LastHour
from shipyard.control.deploys.registry import Registry
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

LIVE_EVENTS = 8  # the environment's newest events on the live view
CHART_SPANS = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


@dataclass(frozen=True)
class Session:
    who: Identity
    csrf: str
    flash: str


class Views:
    def __init__(self, *, calls: ApiCalls, store: Store, registry: Registry, clock: Clock,
                 load_spec: Any) -> None:
        self.calls, self.store, self.registry, self.clock, self.load_spec = calls, store, registry, clock, load_spec
        self.steps = StepClock(clock)
        self.last_hour = LastHour(store)

    def _spec(self) -> Spec:
        spec: Spec = self.load_spec()
        return spec

    def _env(self, spec: Spec, q: dict[str, str]) -> str:
        names = sorted(spec.environments)
        env = q.get("env") or (names[0] if names else "")
        spec.env(env)  # unknown environment → BadInput, shown as a message
        return env

    async def overview(self, s: Session) -> str:
        spec = self._spec()
        envs: Any = await self.calls.call(s.who, "GET", "/v1/status")
        alerts: Any = await self.calls.call(s.who, "GET", "/v1/alerts")
        firing: dict[str, list[str]] = {}
        for r in alerts["rules"]:
            if r["state"] == "firing":
                firing.setdefault(r["env"], []).append(r["name"])
        now = self.clock.time()
        names = [e["env"] for e in envs]
        traffic = await asyncio.to_thread(lambda: {n: self.last_hour.latest(n, now) for n in names})
        acts = frozenset(n for n in names if self.calls.may(s.who, "POST", "/v1/rollback", n))
        return overview(spec.app.name, s.who.performer, s.who.role, s.csrf, envs, firing, s.flash, traffic, acts)

    async def live_doc(self, who: Identity, env: str) -> dict[str, Any]:
        status: Any = await self.calls.call(who, "GET", "/v1/status", query={"env": env})
        waiting: Any = await self.calls.call(who, "GET", "/v1/approvals")
        running = status.get("deployment")
        dep = self.store.get_deployment(running["id"]) if running else None
        steps = self.store.list_steps(dep.id) if dep else []
        run = self.registry.canary(env)
        plan = [s.to_json() for s in run.steps] if run is not None else []
        doc = live_env(status, dep, steps, waiting, plan, self.steps)
        events: Any = await self.calls.call(who, "GET", "/v1/events", query={"env": env, "since": "1h"})
        doc["events"] = [{"at": e["at"], "kind": e["kind"], "message": e["message"][:300]}
                         for e in events["events"][-LIVE_EVENTS:]][::-1]
        return doc

    async def live(self, s: Session, q: dict[str, str]) -> str:
        spec = self._spec()
        env = self._env(spec, q)
        first = await self.live_doc(s.who, env)
        return live_page(spec.app.name, s.who.performer, s.who.role, s.csrf, sorted(spec.environments), env,
                         first, s.flash, may_deploy=self.calls.may(s.who, "POST", "/v1/canary", env),
                         may_approve=self.calls.may(s.who, "POST", "/v1/approve", env))

    async def history(self, s: Session, q: dict[str, str]) -> str:
        spec = self._spec()
        env = self._env(spec, q)
        rows: Any = await self.calls.call(s.who, "GET", "/v1/history", query={"env": env, "limit": "50"})
        return history_page(spec.app.name, s.who.performer, s.who.role, s.csrf, sorted(spec.environments), env,
                            rows, s.flash)

    async def charts(self, s: Session, q: dict[str, str]) -> str:
        spec = self._spec()
        env = self._env(spec, q)
        span = q.get("since") or "24h"
        if span not in CHART_SPANS:
            raise BadInput(f"since: expected one of {', '.join(CHART_SPANS)}, got {span[:20]!r}")
        since = CHART_SPANS[span]
        # About 360 points a series; whole minutes beyond the 10-second history's retention.
        unit = 10 if since <= spec.metrics.retention.raw else 60
        step = max(unit, since // 360 // unit * unit)
        metrics: Any = await self.calls.call(s.who, "GET", "/v1/metrics",
                                             query={"env": env, "since": f"{since}s", "step": f"{step}s"})
        rows: Any = await self.calls.call(s.who, "GET", "/v1/history", query={"env": env, "limit": "200"})
        # Release ids end in the commit: enough to tell deploys apart on a chart.
        marks = [{"t": r["started_at"], "label": f"{r['kind']} {r['release'].rsplit('-', 1)[-1]} {r['outcome']}",
                  "outcome": r["outcome"]}
                 for r in rows if r["started_at"] >= metrics["since"]]
        return charts_page(spec.app.name, s.who.performer, s.who.role, s.csrf, sorted(spec.environments), env,
                           span, list(CHART_SPANS), chart_series(metrics, marks), s.flash)

    async def backups(self, s: Session, q: dict[str, str]) -> str:
        spec = self._spec()
        env = self._env(spec, q)
        backup = spec.environments[env].backup if env in spec.environments else None
        listing: dict[str, Any] | None = None
        problem = ""
        if backup is not None:
            try:
                listing = await self.calls.call(s.who, "GET", "/v1/backups", query={"env": env})
            except ShipyardError as err:
                problem = str(err)
        drills = self.store.list_drills(env, limit=20)
        return backups_page(spec.app.name, s.who.performer, s.who.role, s.csrf, sorted(spec.environments), env,
                            backup, listing, drills, problem, s.flash)

    async def alerts(self, s: Session, q: dict[str, str]) -> str:
        spec = self._spec()
        env = q.get("env") or None
        if env:
            spec.env(env)
        alerts: Any = await self.calls.call(s.who, "GET", "/v1/alerts", query={"env": env} if env else {})
        silences: Any = await self.calls.call(s.who, "GET", "/v1/silences")
        return alerts_page(spec.app.name, s.who.performer, s.who.role, s.csrf, sorted(spec.environments), env,
                           alerts["rules"], silences["silences"], s.flash)
