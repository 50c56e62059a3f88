"""Gathers a report's facts from the state store and builds it (engine/reports, pure): ``shipyard report``.

Reports are kept under ``.shipyard/reports/<env>-<period>-<time>.{json,html}`` when asked (``keep``);
they carry no secret value: only counts, times, release ids, reasons and performers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.engine.reports.build import PERIODS, DeployFact, MinuteFact, ReportFacts, build_report
from shipyard.engine.reports.html import render_report
from shipyard.engine.reports.schedule import due_reports
from shipyard.errors import BadInput
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

WEEK = 7 * 86400
log = logging.getLogger("shipyard.control")


class ReportService:
    def __init__(self, *, store: Store, clock: Clock, out: Path) -> None:
        self.store = store
        self.clock = clock
        self.out = out

    def facts(self, spec: Spec, env: str, period: str) -> ReportFacts:
        if period not in PERIODS:
            raise BadInput(f"--period: expected one of {', '.join(PERIODS)}, got {period!r}")
        now = self.clock.time()
        since = now - WEEK
        env_spec = spec.env(env)
        performers: dict[int, str] = {}
        approvers: dict[int, list[str]] = {}
        for a in self.store.list_audit(env, since, limit=5000):
            words = (a.target or "").split()
            if len(words) != 2 or words[0] != "deployment" or not words[1].isdigit():
                continue
            if a.action in ("deploy", "rollback"):
                performers[int(words[1])] = a.performer
            elif a.action == "approve":
                approvers.setdefault(int(words[1]), []).append(a.performer)
        deploys = [DeployFact(d.id, d.kind, d.release, d.previous_release, d.strategy, d.status, d.reason,
                              d.started_at, d.finished_at, performers.get(d.id), tuple(approvers.get(d.id, ())))
                   for d in self.store.list_deployments(env, limit=5000) if d.started_at >= since]
        alerts = [{"rule": (e.data or {}).get("alertname"), "kind": e.kind, "at": e.at,
                   "severity": (e.data or {}).get("severity")}
                  for e in self.store.events_since(since, env, limit=20000) if e.kind.startswith("alert_")]
        names = None
        if spec.status_page is not None:
            names = {c.name for c in spec.status_page.components if c.env == env}
        incidents = [{"id": i.id, "title": i.title, "impact": i.impact, "status": i.status,
                      "created_at": i.created_at, "resolved_at": i.resolved_at}
                     for i in self.store.incidents(since=since) if names is None or names & set(i.components)]
        backups = [{"source": b.source, "status": b.status, "started_at": b.started_at, "finished_at": b.finished_at}
                   for b in self.store.list_backup_runs(env, limit=1000)]
        drills = [{"ok": d.ok, "started_at": d.started_at, "duration_s": _worst(d.detail, "rto_s"),
                   "rpo_s": _worst(d.detail, "rpo_s")} for d in self.store.list_drills(env, limit=1000)]
        backup = env_spec.backup
        return ReportFacts(env=env, period=period, now=now, slo=spec.reports.slo, minutes=self._minutes(env, since),
                           deploys=deploys, alerts=alerts, incidents=incidents, backups=backups, drills=drills,
                           rto=backup.rto if backup else None, rpo=backup.rpo if backup else None,
                           title=f"{spec.app.name} · {env} · {period} report")

    def _minutes(self, env: str, since: float) -> list[MinuteFact]:
        """Every release together, one fact per minute; the minutes not compacted yet come from raw points."""
        rows = self.store.read_points("minute", env, since)
        newest = max((int(p["t"]) for p in rows), default=int(since) - 60)
        rows += [{**p, "t": int(p["t"]) // 60 * 60} for p in self.store.read_points("raw", env, newest + 60)]
        per_t: dict[int, list[dict[str, Any]]] = {}
        for p in rows:
            per_t.setdefault(int(p["t"]), []).append(p)
        out = []
        for t, ps in sorted(per_t.items()):
            req = sum(int(p["requests"]) for p in ps)
            out.append(MinuteFact(t, req, sum(int(p["errors"]) for p in ps),
                                  *(_mean(ps, q) for q in ("p50", "p95", "p99"))))
        return out

    def build(self, spec: Spec, env: str, period: str, keep: bool = False) -> dict[str, Any]:
        doc = build_report(self.facts(spec, env, period))
        html = render_report(doc)
        out: dict[str, Any] = {"report": doc, "html": html}
        if keep:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(doc["to"]))
            self.out.mkdir(parents=True, exist_ok=True)
            base = self.out / f"{env}-{period}-{stamp}"
            base.with_suffix(".json").write_text(json.dumps(doc, indent=2))
            base.with_suffix(".html").write_text(html)
            os.chmod(base.with_suffix(".html"), 0o600)
            out["kept"] = str(base.with_suffix(".html"))
        return out


def _worst(detail: dict[str, Any] | None, key: str) -> float | None:
    """A drill's slowest restore (``rto_s``) or oldest restored data (``rpo_s``) over its sources."""
    values = [float(s[key]) for s in (detail or {}).get("sources", []) if s.get(key) is not None]
    return max(values, default=None)


def _mean(points: list[dict[str, Any]], key: str) -> float | None:
    pairs = [(p[key], int(p["requests"])) for p in points if p.get(key) is not None and int(p["requests"]) > 0]
    total = sum(w for _, w in pairs)
    return None if total == 0 else sum(v * w for v, w in pairs) / total


class ReportScheduler:
    """Builds and keeps the scheduled reports and hands each to the receivers (``notify``: a notice naming
    the kept HTML file, which e-mail receivers attach). What was sent, and when the schedule was last
    looked at, is kept in ``.shipyard/reports/sent.json``: a restart sends nothing twice, and a report that
    fell due while the control plane was down is sent once when it is back (up to a week late)."""

    def __init__(self, *, service: ReportService, spec: Callable[[], Spec | None],
                 notify: Callable[[str, str, str, dict[str, Any]], None]) -> None:
        self.service = service
        self.spec = spec
        self.notify = notify  # (env, subject, body, data)
        self.sent_path = service.out / "sent.json"
        self.last: float | None = None  # read from sent.json on the first tick

    def _state(self) -> tuple[dict[str, list[str]], float | None]:
        try:
            data = json.loads(self.sent_path.read_text())
        except (OSError, ValueError):
            return {}, None
        if not isinstance(data, dict):
            return {}, None
        if isinstance(data.get("sent"), dict):
            checked = data.get("checked_at")
            return data["sent"], float(checked) if isinstance(checked, int | float) else None
        return data, None  # the first format: {env: [keys]}

    def tick(self) -> list[str]:
        spec = self.spec()
        now = self.service.clock.time()
        if spec is None or (spec.reports.daily is None and spec.reports.weekly is None
                            and spec.reports.after_deploy is None):
            self.last = now
            return []
        sent, checked = self._state()
        if self.last is None:
            self.last = max(checked, now - WEEK) if checked is not None else now
        since, self.last = self.last, now
        made: list[str] = []
        for env in spec.env_names:
            env_spec = spec.env(env)
            tz = env_spec.windows.timezone if env_spec.windows is not None else "UTC"
            deploys = [(d.id, d.finished_at) for d in self.service.store.list_deployments(env, limit=20)
                       if d.kind == "deploy" and d.status == "succeeded" and d.finished_at is not None]
            done = frozenset(sent.get(env, []))
            for due in due_reports(spec.reports, since=since, now=now, tz=tz, finished_deploys=deploys, sent=done):
                out = self.service.build(spec, env, due.period, keep=True)
                sent.setdefault(env, []).append(due.key)
                rep = out["report"]
                what = f"after deploy #{due.key.split('@')[1]}" if due.kind == "after_deploy" else due.kind
                self.notify(env, f"{rep['title']} ({what})",
                            _summary_line(rep), {"report": out["kept"], "kind": due.kind, "key": due.key})
                made.append(out["kept"])
        self.service.out.mkdir(parents=True, exist_ok=True)
        trimmed = {env: keys[-200:] for env, keys in sent.items()}
        tmp = self.sent_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"checked_at": now, "sent": trimmed}))
        os.replace(tmp, self.sent_path)
        return made

    async def run_forever(self, interval: float = 30.0) -> None:
        while True:
            await self.service.clock.sleep(interval)
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("scheduled reports: a tick failed")


def _summary_line(rep: dict[str, Any]) -> str:
    av = rep["availability"]["value"]
    return (f"availability {'-' if av is None else f'{av * 100:.3f}%'}, {rep['deploys']['count']} deploys, "
            f"{len(rep['deploys']['rollbacks'])} rolled back, {rep['alerts']['fired']} alerts fired")
