"""Deploy windows, pure: may a deploy start at ``now``, and if not, when next.

``allow`` windows (days and a time range; ``from`` after ``to`` runs past midnight) say when deploys may
start; without any, always. ``freeze`` ranges say when they may not, whatever ``allow`` says. Times are in
the environment's ``timezone``. Rollbacks, aborts and pauses are never held by a window (the callers
ask only for deploys).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from shipyard.primitives.spec.pipeline import AllowWindow, FreezeWindow, WindowsSpec, parse_days

SEARCH_DAYS = 400  # how far ahead the next open time is looked for (a year-end freeze is weeks)


@dataclass(frozen=True)
class WindowVerdict:
    allowed: bool
    reason: str = ""
    next_open: dt.datetime | None = None  # in the environment's zone

    def message(self, env: str) -> str:
        when = (f"; next allowed {self.next_open:%Y-%m-%d %H:%M %Z} ({self.next_open.tzinfo})"
                if self.next_open else "; no deploy window opens in the next year")
        return f"{env}: deploys are not allowed now: {self.reason}{when}"


def check(windows: WindowsSpec | None, now: float) -> WindowVerdict:
    if windows is None:
        return WindowVerdict(True)
    zone = ZoneInfo(windows.timezone)
    local = dt.datetime.fromtimestamp(now, zone)
    reason = _closed(windows, local)
    if reason is None:
        return WindowVerdict(True)
    return WindowVerdict(False, reason, _next_open(windows, local))


def _closed(w: WindowsSpec, t: dt.datetime) -> str | None:
    for f in w.freeze:
        if _aware(f.from_, t) <= t < _aware(f.to, t):
            why = f" ({f.reason})" if f.reason else ""
            return f"frozen from {f.from_:%Y-%m-%d %H:%M} to {f.to:%Y-%m-%d %H:%M}{why}"
    if w.allow and not any(_inside(a, t) for a in w.allow):
        shown = ", ".join(f"{a.days} {_fmt(a.from_)}–{_fmt(a.to)}" for a in w.allow)
        return f"outside the deploy windows ({shown} {w.timezone})"
    return None


def _inside(a: AllowWindow, t: dt.datetime) -> bool:
    days = parse_days(a.days)
    minute = t.hour * 60 + t.minute
    if a.from_ <= a.to:
        return t.weekday() in days and a.from_ <= minute < a.to
    # Past midnight: the evening part on a listed day, the morning part on the day after one.
    return (t.weekday() in days and minute >= a.from_) or ((t.weekday() - 1) % 7 in days and minute < a.to)


def _next_open(w: WindowsSpec, t: dt.datetime) -> dt.datetime | None:
    candidates: list[dt.datetime] = [_aware(f.to, t) for f in w.freeze if _aware(f.to, t) > t]
    day0 = t.replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(SEARCH_DAYS):
        day = day0 + dt.timedelta(days=d)
        for a in w.allow:
            start = day + dt.timedelta(minutes=a.from_)
            if start > t:
                candidates.append(start)
    if not w.allow:
        candidates.append(t)
    for c in sorted(candidates):
        # Normalise through the zone: a wall time in a DST gap moves to the real instant.
        c = dt.datetime.fromtimestamp(c.timestamp(), t.tzinfo)
        if _closed(w, c) is None:
            return c
    return None


def _aware(value: dt.datetime, like: dt.datetime) -> dt.datetime:
    """A freeze time without an offset is in the environment's zone."""
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


__all__ = ["FreezeWindow", "WindowVerdict", "check"]
