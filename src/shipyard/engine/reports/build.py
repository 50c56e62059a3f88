"""One report over a period (1h / 24h / 7d), from facts the control plane gathers (control/reports.py).

Availability is the good share of requests (router data: 5xx are the bad ones) against the SLO; the
latency percentiles of the period are the request-weighted mean of its minutes' (minute points keep
quantiles, not histograms) and the worst minute's P99 beside them; the 7-day trend is one value per day.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERIODS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
BACKUP_OK = "ok"  # a backup run's status when it succeeded (control/backups.py)
DAY = 86400


@dataclass(frozen=True)
class MinuteFact:
    t: int
    requests: int
    errors: int
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class DeployFact:
    id: int
    kind: str
    release: str
    previous: str | None
    strategy: str
    status: str
    reason: str | None
    started_at: float
    finished_at: float | None
    performer: str | None
    approved_by: tuple[str, ...] = ()  # who approved it (environments with [approval])


@dataclass(frozen=True)
class ReportFacts:
    env: str
    period: str
    now: float
    slo: float  # availability objective, a fraction (0.999)
    minutes: Sequence[MinuteFact]  # the last 7 days (the trend) — the period is the tail of it
    deploys: Sequence[DeployFact]
    alerts: Sequence[Mapping[str, Any]]  # alert events: {"rule", "kind", "at", "severity"}
    incidents: Sequence[Mapping[str, Any]]
    backups: Sequence[Mapping[str, Any]]  # {"source", "status", "started_at", "finished_at"}
    drills: Sequence[Mapping[str, Any]]  # {"ok", "started_at", "duration_s" (restore: RTO), "rpo_s" (data age)}
    rto: float | None = None
    rpo: float | None = None
    title: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def build_report(f: ReportFacts) -> dict[str, Any]:
    span = PERIODS[f.period]
    start = f.now - span
    period = [m for m in f.minutes if m.t >= start]
    return {
        "env": f.env, "period": f.period, "from": start, "to": f.now, "title": f.title or f"{f.env}: {f.period} report",
        # A deploy that overlaps the period counts (the after-deploy checkpoint starts as its deploy ends).
        "deploys": _deploys([d for d in f.deploys if (d.finished_at or f.now) >= start]),
        "availability": _availability(period, f.slo),
        "traffic": _traffic(period),
        "trend": _trend(f.minutes, f.now),
        "series": _series(period, start, span),
        "alerts": _alerts([a for a in f.alerts if a["at"] >= start]),
        "incidents": [i for i in f.incidents if i["created_at"] >= start or (i.get("resolved_at") or f.now) >= start],
        "backups": _backups(f, start),
    }


def _deploys(deps: Sequence[DeployFact]) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for d in deps:
        outcomes[d.status] = outcomes.get(d.status, 0) + 1
    durations = [d.finished_at - d.started_at for d in deps if d.finished_at is not None]
    rows = [{"id": d.id, "kind": d.kind, "release": d.release, "previous": d.previous, "strategy": d.strategy,
             "status": d.status, "reason": d.reason, "started_at": d.started_at,
             "duration_s": None if d.finished_at is None else round(d.finished_at - d.started_at, 1),
             "performer": d.performer, "approved_by": list(d.approved_by)}
            for d in sorted(deps, key=lambda d: d.started_at)]
    rollbacks = [r for r in rows if r["kind"] == "rollback" or r["status"] == "rolled_back"]
    return {"count": len(deps), "outcomes": outcomes,
            "duration_s": {"mean": round(sum(durations) / len(durations), 1) if durations else None,
                           "max": round(max(durations), 1) if durations else None},
            "rollbacks": [{"id": r["id"], "release": r["release"], "reason": r["reason"], "performer": r["performer"],
                           "at": r["started_at"]} for r in rollbacks],
            "list": rows}


def _availability(period: Sequence[MinuteFact], slo: float) -> dict[str, Any]:
    requests = sum(m.requests for m in period)
    errors = sum(m.errors for m in period)
    value = None if requests == 0 else 1 - errors / requests
    budget = (1 - slo) * requests
    return {"value": value, "slo": slo, "met": None if value is None else value >= slo,
            "requests": requests, "errors": errors,
            "error_budget_used": None if requests == 0 or budget == 0 else errors / budget}


def _weighted(period: Sequence[MinuteFact], attr: str) -> float | None:
    pairs = [(getattr(m, attr), m.requests) for m in period if getattr(m, attr) is not None and m.requests > 0]
    total = sum(w for _, w in pairs)
    return None if total == 0 else sum(v * w for v, w in pairs) / total


def _traffic(period: Sequence[MinuteFact]) -> dict[str, Any]:
    requests = sum(m.requests for m in period)
    errors = sum(m.errors for m in period)
    worst = max((m.p99 for m in period if m.p99 is not None), default=None)
    minutes = len({m.t for m in period})
    return {"requests": requests, "rps": requests / (minutes * 60) if minutes else None,
            "error_rate": None if requests == 0 else errors / requests,
            "p50": _weighted(period, "p50"), "p95": _weighted(period, "p95"), "p99": _weighted(period, "p99"),
            "p99_worst_minute": worst}


def _trend(minutes: Sequence[MinuteFact], now: float) -> list[dict[str, Any]]:
    today = int(now // DAY) * DAY
    out = []
    for k in range(6, -1, -1):
        start = today - k * DAY
        day = [m for m in minutes if start <= m.t < start + DAY]
        t = _traffic(day)
        out.append({"day": start, "requests": t["requests"], "error_rate": t["error_rate"], "p50": t["p50"],
                    "p95": t["p95"], "p99": t["p99"]})
    return out


def _series(period: Sequence[MinuteFact], start: float, span: int) -> list[dict[str, Any]]:
    """The period in 120 equal buckets for the charts (x is time): requests, error rate, P95 per bucket;
    a bucket without traffic has no error rate or latency (None), not zero."""
    step = max(60, span // 120)
    buckets: dict[int, list[MinuteFact]] = {}
    for m in period:
        buckets.setdefault(int((m.t - start) // step), []).append(m)
    out = []
    for k in range(span // step):
        tr = _traffic(buckets.get(k, []))
        out.append({"t": start + k * step, "requests": tr["requests"], "error_rate": tr["error_rate"],
                    "p95": tr["p95"]})
    return out


def _alerts(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    fired = [e for e in events if e["kind"] == "alert_firing"]
    by_rule: dict[str, int] = {}
    for e in fired:
        by_rule[str(e["rule"])] = by_rule.get(str(e["rule"]), 0) + 1
    return {"fired": len(fired), "by_rule": by_rule,
            "list": [{"rule": e["rule"], "at": e["at"], "severity": e.get("severity")} for e in fired]}


def _backups(f: ReportFacts, start: float) -> dict[str, Any]:
    """Backups against the RPO per source (the stalest source decides), drills against the RTO and RPO."""
    runs = [b for b in f.backups if b["started_at"] >= start]
    ok = [b for b in f.backups if b["status"] == BACKUP_OK and b.get("finished_at")]
    newest_per: dict[str, float] = {}
    for b in ok:
        newest_per[b["source"]] = max(newest_per.get(b["source"], 0.0), float(b["finished_at"]))
    named = sorted({b["source"] for b in f.backups} - {"*"})  # "*": a scheduled run that missed or failed
    sources = [{"source": name, "newest_age_s": None if name not in newest_per else f.now - newest_per[name],
                "runs": sum(1 for b in runs if b["source"] == name),
                "failed": sum(1 for b in runs if b["source"] == name and b["status"] != BACKUP_OK)}
               for name in named]
    for s in sources:
        s["rpo_met"] = None if f.rpo is None or s["newest_age_s"] is None else s["newest_age_s"] <= f.rpo
    ages = [s["newest_age_s"] for s in sources]
    age = None if not ages or None in ages else max(ages)
    drills = [d for d in f.drills if d["started_at"] >= start]
    last_drill = max(f.drills, key=lambda d: d["started_at"], default=None)
    drill_s = last_drill.get("duration_s") if last_drill else None
    drill_rpo = last_drill.get("rpo_s") if last_drill else None
    return {"runs": len(runs), "failed": sum(1 for b in runs if b["status"] != BACKUP_OK),
            "newest_age_s": age, "rpo_s": f.rpo, "rpo_met": None if f.rpo is None or age is None else age <= f.rpo,
            "sources": sources,
            "drills": len(drills), "drills_failed": sum(1 for d in drills if not d["ok"]),
            "last_drill_at": last_drill["started_at"] if last_drill else None,
            "last_drill_ok": bool(last_drill["ok"]) if last_drill else None,
            "last_drill_s": drill_s, "rto_s": f.rto,
            "rto_met": None if f.rto is None or drill_s is None or last_drill is None
            else bool(last_drill["ok"]) and drill_s <= f.rto,
            "last_drill_rpo_s": drill_rpo,
            "drill_rpo_met": None if f.rpo is None or drill_rpo is None else drill_rpo <= f.rpo,
            "drill_list": [{"at": d["started_at"], "ok": d["ok"], "rto_s": d.get("duration_s"),
                            "rpo_s": d.get("rpo_s")} for d in sorted(drills, key=lambda d: d["started_at"])]}
