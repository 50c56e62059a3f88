"""Which backups a retention policy keeps: restic's ``forget`` semantics, as a pure function.

Backups are taken newest first. ``keep_within`` keeps every backup younger than the duration measured from
the newest backup (backups in the future are not "newest"). Each ``keep_<period>`` keeps the newest backup
of each of the last N calendar periods that have a backup (hours, days, ISO weeks Monday–Sunday, months,
years — in UTC); ``keep_last`` the last N. When a rule still has count left after the oldest backup, that
oldest one is kept too (restic ≥ 0.14: it maximises the history kept). A backup is kept when any rule keeps it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from shipyard.errors import BadInput
from shipyard.primitives.spec.backup import RetentionSpec


@dataclass(frozen=True)
class RetentionDecision:
    id: str
    time: float
    keep: bool
    reasons: tuple[str, ...]


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _week(d: dt.datetime) -> int:
    year, week, _ = d.isocalendar()
    return year * 100 + week


_BUCKETS: list[tuple[str, str, Callable[[dt.datetime, int], int]]] = [
    ("keep_last", "last", lambda d, nr: nr),
    ("keep_hourly", "hourly", lambda d, nr: ((d.year * 100 + d.month) * 100 + d.day) * 100 + d.hour),
    ("keep_daily", "daily", lambda d, nr: (d.year * 100 + d.month) * 100 + d.day),
    ("keep_weekly", "weekly", lambda d, nr: _week(d)),
    ("keep_monthly", "monthly", lambda d, nr: d.year * 100 + d.month),
    ("keep_yearly", "yearly", lambda d, nr: d.year),
]


def apply_policy(backups: Sequence[tuple[str, float]], policy: RetentionSpec | None, now: float) -> list[RetentionDecision]:
    """Decisions for ``(id, time)`` pairs, newest first. An absent or empty policy is refused."""
    if policy is None:
        raise BadInput("no retention policy: set [environments.<env>.backup.retention] (e.g. keep_daily = 7); "
                       "shipyard refuses to forget backups without one")
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    if not ordered:
        return []
    past = [t for _, t in ordered if t <= now]
    latest = max(past) if past else ordered[-1][1]
    counts = {field: getattr(policy, field) or 0 for field, _, _ in _BUCKETS}
    last_val: dict[str, int | None] = {field: None for field, _, _ in _BUCKETS}
    out: list[RetentionDecision] = []
    for nr, (bid, t) in enumerate(ordered):
        reasons: list[str] = []
        if policy.keep_within is not None and t > latest - policy.keep_within:
            reasons.append("within")
        d = _utc(t)
        oldest = nr == len(ordered) - 1
        for field, label, bucket in _BUCKETS:
            if counts[field] <= 0:
                continue
            val = bucket(d, nr)
            if val != last_val[field]:
                reasons.append(label)
            elif oldest:
                reasons.append(f"oldest {label}")
            else:
                continue
            last_val[field] = val
            counts[field] -= 1
        out.append(RetentionDecision(bid, t, bool(reasons), tuple(reasons)))
    return out
