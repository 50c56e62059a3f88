"""Filtering log lines by text, time and trace id (``shipyard logs --grep/--since/--until/--trace``).

Works on any line shipyard keeps: the router's access log (JSON lines with ``ts`` and ``trace_id``), the
control plane's log (JSON lines from structlog with ``timestamp`` and, in a deploy, ``trace_id``) and
instance output (stamped by the supervisor: ``2026-12-01T20:00:01.250Z <text>``, or a time the line
carries itself). A line's time is read by ``line_time``: a JSON object's ``ts`` / ``timestamp`` / ``time``,
else a leading ISO 8601 or a common-log-format time.

``filter_lines(lines, grep=, since=, until=, trace=)`` keeps what matches every filter given:

- ``grep``: a substring, case-sensitive (``re:PATTERN`` for a regular expression);
- ``since`` / ``until``: epoch seconds; a line without a time of its own inherits the one above it (a
  traceback's lines follow the error line), lines before the first timed line are kept only without
  ``since``;
- ``trace``: a W3C trace id (32 hex digits); a JSON line matches on its ``trace_id``, another line on
  the id appearing in it (a ``traceparent`` an app logs).

``parse_since("10m", now)`` turns a flag into epoch seconds (a duration back from ``now``, or an ISO time).
The filtering is pure; ``read_lines`` reads a log file with its rotated copies as one stream.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.errors import BadInput
from shipyard.primitives.spec.durations import parse_duration

_ISO = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)\s?(Z|[+-]\d{2}:?\d{2})?\]?")
_CLF = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4})[: ](\d{2}):(\d{2}):(\d{2})(?: ([+-]\d{4}))?\]")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_TRACE = re.compile(r"^[0-9a-f]{32}$")
_TIME_KEYS = ("ts", "timestamp", "time")


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _iso(text: str) -> float | None:
    m = _ISO.match(text)
    if m is None:
        return None
    day, clock, zone = m.groups()
    try:
        dt = datetime.fromisoformat(f"{day}T{clock.replace(',', '.')}{_zone(zone)}")
    except ValueError:
        return None
    # No zone written: the machine's local time, as Python's logging writes it.
    return dt.timestamp()


def _zone(zone: str | None) -> str:
    if not zone:
        return ""
    if zone == "Z":
        return "+00:00"
    return zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"


def line_time(line: str, doc: dict[str, Any] | None = None) -> float | None:
    """The time a line carries (epoch seconds), or None."""
    doc = _json(line) if doc is None else doc
    if doc is not None:
        for key in _TIME_KEYS:
            value = doc.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            if isinstance(value, str) and (t := _iso(value)) is not None:
                return t
        return None
    if (t := _iso(line)) is not None:
        return t
    m = _CLF.search(line[:200])
    if m and m.group(2) in _MONTHS:
        d, mon, y, hh, mm, ss, zone = m.groups()
        try:
            dt = datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss))
            if zone:
                return datetime.fromisoformat(dt.isoformat() + _zone(zone)).timestamp()
            return dt.timestamp()
        except ValueError:
            return None
    return None


def parse_since(text: str, now: float, flag: str = "--since") -> float:
    """``10m`` (that long before ``now``) or an ISO 8601 time → epoch seconds; ``BadInput`` names ``flag``."""
    value = text.strip()
    if _ISO.match(value) and (t := _iso(value if len(value) > 10 else value + "T00:00:00")) is not None:
        return t
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return datetime.fromisoformat(value).replace(tzinfo=None).timestamp()
    try:
        return now - parse_duration(value)
    except ValueError:
        raise BadInput(f"{flag}: expected a duration back from now (10m, 2h, 7d) or an ISO time "
                       f"(2026-12-01T20:00:00Z), got {text[:40]!r}") from None


def check_trace(trace: str) -> str:
    value = trace.strip().lower()
    if not _TRACE.match(value) or value == "0" * 32:
        raise BadInput(f"--trace: expected a W3C trace id (32 hex digits, as in traceparent), got {trace[:40]!r}")
    return value


def matcher(grep: str | None) -> Callable[[str], bool]:
    if grep is None:
        return lambda _line: True
    if grep.startswith("re:"):
        try:
            pattern = re.compile(grep[3:])
        except re.error as exc:
            raise BadInput(f"--grep: not a regular expression ({exc}): {grep[3:][:60]!r}") from None
        return lambda line: pattern.search(line) is not None
    return lambda line: grep in line


def _trace_of(line: str, doc: dict[str, Any] | None) -> str | None:
    if doc is not None:
        value = doc.get("trace_id")
        return value.lower() if isinstance(value, str) else None
    return None


def filter_lines(lines: Iterable[str], grep: str | None = None, since: float | None = None,
                 until: float | None = None, trace: str | None = None) -> Iterator[str]:
    """The lines that match every filter given (see the module docstring), in their order."""
    match = matcher(grep)
    want_trace = check_trace(trace) if trace is not None else None
    last: float | None = None
    for line in lines:
        doc = _json(line)
        t = line_time(line, doc)
        if t is not None:
            last = t
        if since is not None and (last is None or last < since):
            continue
        if until is not None and last is not None and last > until:
            continue
        if want_trace is not None:
            own = _trace_of(line, doc)
            if (own if own is not None else (want_trace if want_trace in line.lower() else None)) != want_trace:
                continue
        if match(line):
            yield line


def read_lines(path: Path) -> Iterator[str]:
    """Every line of a log file and of its rotated copies (``NAME.N``), oldest first, read in chunks under
    the shared lock rotation respects (control/logfiles.py): no line read twice or missed across a
    rotation while it runs (a rotation waits for the reader)."""
    copies: list[Path] = []
    n = 1
    while (c := path.with_name(f"{path.name}.{n}")).exists():
        copies.append(c)
        n += 1
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        fd = -1
    try:
        if fd >= 0:
            fcntl.flock(fd, fcntl.LOCK_SH)
        rest = b""
        for file in [*reversed(copies), path]:
            with contextlib.suppress(FileNotFoundError), open(file, "rb") as f:
                while chunk := f.read(1 << 20):
                    *lines, rest = (rest + chunk).split(b"\n")
                    for raw in lines:
                        yield raw.decode("utf-8", "replace")
        if rest:
            yield rest.decode("utf-8", "replace")
    finally:
        if fd >= 0:
            os.close(fd)  # closing drops the lock
