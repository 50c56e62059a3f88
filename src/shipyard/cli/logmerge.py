"""Interleaving an environment's instance logs by time, as far as the lines let us tell.

Instances write their output straight into their log files (``O_APPEND``, no pipe through shipyard), so
that they keep running — and logging — while the control plane is down. The price: nothing stamps a line
when it is written, and a time cannot be added afterwards. What is known:

- a line that starts with its own time (ISO 8601, as Python's logging, gunicorn and most frameworks write
  it, optionally in brackets) or holds a common-log-format time (``[01/Dec/2026 20:00:00]``, as
  ``http.server`` writes it) has that time (``source = "line"``);
- a line without one was written after the line above it in the same file (a traceback's lines follow
  the error they belong to): it is placed with that line (``"inherited"``);
- a line read while following (``logs --follow``) was written at most one poll before it was read
  (``"read"``);
- the control plane records when each instance started, was restarted, crashed or stopped (events).

Lines before a file's first timed line sort with it; a file with no timed line at all sorts at its
``anchor`` (its instance's start time, or the file's last write for an instance that is gone). Within a
file the order is always the file's.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

_ISO = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}:?\d{2})?\]?")
_CLF = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4})[: ](\d{2}):(\d{2}):(\d{2})(?: ([+-]\d{4}))?\]")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}


@dataclass(frozen=True)
class Line:
    instance: str
    text: str                 # without its newline
    time: float | None        # what is known of when it was written
    source: str | None        # "line" | "inherited" | "read" | None
    order: float              # the time it sorts at (see the module docstring)
    file: int = 0
    index: int = 0


@dataclass(frozen=True)
class Event:
    """A control-plane event about an instance (started, restarted, crashed, unhealthy, stopped)."""

    instance: str
    kind: str
    message: str
    time: float


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def _epoch(dt: datetime) -> float:
    # No zone written: the machine's local time, as Python's logging and http.server write it.
    return dt.timestamp() if dt.tzinfo is not None else time.mktime(dt.timetuple()) + dt.microsecond / 1e6


def line_time(text: str) -> float | None:
    """The time a log line carries (seconds since the epoch), or None."""
    try:
        if m := _ISO.match(text):
            day, clock, frac, zone = m.groups()
            dt = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=_zone(zone))
            return _epoch(dt) + (float(f"0.{frac}") if frac else 0.0)
        if (m := _CLF.search(text[:200])) and m.group(2) in _MONTHS:
            d, mon, y, hh, mm, ss, zone = m.groups()
            dt = datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), tzinfo=_zone(zone))
            return _epoch(dt)
    except ValueError:  # looked like a time, was not one (month 13)
        return None
    return None


def timed(instance: str, texts: list[str], anchor: float, file: int = 0) -> list[Line]:
    """A file's lines with what is known of their times."""
    own = [line_time(t) for t in texts]
    first = next((t for t in own if t is not None), anchor)
    out: list[Line] = []
    last: float | None = None
    for i, (text, t) in enumerate(zip(texts, own, strict=True)):
        if t is not None:
            last = t
            out.append(Line(instance, text, t, "line", t, file, i))
        else:
            out.append(Line(instance, text, last, "inherited" if last is not None else None,
                            last if last is not None else first, file, i))
    return out


def newest(files: list[list[Line]], n: int) -> list[Line]:
    """The newest ``n`` lines across files, oldest first, interleaved by the times they sort at."""
    merged = sorted((line for lines in files for line in lines), key=lambda x: (x.order, x.file, x.index))
    return merged[-n:] if n > 0 else []


def with_events(lines: list[Line], events: list[Event], *, whole: bool) -> list[Line | Event]:
    """The control plane's instance events placed among ``lines`` by time: every one when ``lines`` are
    the files' whole contents (``whole``), else those from the oldest line shown on."""
    start = lines[0].order if lines and not whole else float("-inf")
    chosen = sorted((e for e in events if e.time >= start), key=lambda e: e.time)
    out: list[Line | Event] = []
    k = 0
    for line in lines:
        while k < len(chosen) and chosen[k].time < line.order:
            out.append(chosen[k])
            k += 1
        out.append(line)
    out.extend(chosen[k:])
    return out


def stamp(t: float | None) -> str:
    """``2026-12-01 20:00:01.250`` in local time, or a placeholder of the same width."""
    if t is None:
        return "-".ljust(23)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"
