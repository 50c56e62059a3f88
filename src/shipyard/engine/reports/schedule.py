"""When the scheduled reports are due (``[reports] daily / weekly / after_deploy``). Pure.

A cron report is due when its expression fired between the last check and now (in the environment's
timezone); one missed while the control plane was down is sent once when it comes back, not once per
missed tick. An after-deploy report is due ``after_deploy`` seconds after a deploy finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from shipyard.primitives.spec.faces import ReportsSpec

CRON_PERIODS = {"daily": "24h", "weekly": "7d"}


@dataclass(frozen=True)
class DueReport:
    kind: str  # daily | weekly | after_deploy
    period: str
    key: str  # what marks it sent (kind + the time it was due for)


def fired_between(expr: str, since: float, now: float, tz: str) -> float | None:
    """The newest time in (since, now] that ``expr`` names, or None."""
    zone = ZoneInfo(tz)
    it = croniter(expr, datetime.fromtimestamp(now, zone))
    prev = float(it.get_prev(float))
    return prev if since < prev <= now else None


def due_reports(spec: ReportsSpec, *, since: float, now: float, tz: str,
                finished_deploys: Sequence[tuple[int, float]], sent: frozenset[str]) -> list[DueReport]:
    """``finished_deploys``: (deployment id, finished at) of succeeded deploys."""
    due: list[DueReport] = []
    for kind in ("daily", "weekly"):
        expr = getattr(spec, kind)
        if expr is None:
            continue
        at = fired_between(expr, since, now, tz)
        if at is not None and f"{kind}@{int(at)}" not in sent:
            due.append(DueReport(kind, CRON_PERIODS[kind], f"{kind}@{int(at)}"))
    if spec.after_deploy is not None:
        for dep_id, finished in finished_deploys:
            key = f"after_deploy@{dep_id}"
            if finished + spec.after_deploy <= now and key not in sent and now - finished < 86400:
                due.append(DueReport("after_deploy", "1h", key))
    return due
