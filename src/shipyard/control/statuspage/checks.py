"""Synthetic HTTP checks of status-page components (``check = {url, interval, conditions}``).

Each check runs at its interval; a result counts in its component's minute (``check_minutes``), which the
uptime bars read. The HTTP request runs in a thread (urllib, no redirects followed beyond urllib's own).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.durations import parse_duration
from shipyard.primitives.spec.faces import CheckSpec
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")
_COND = re.compile(r"^\s*(status|response_time)\s*(==|!=|<=|>=|<|>)\s*(\S+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    status: int | None
    response_time: float
    at: float


def judge(conditions: tuple[str, ...], status: int | None, response_time: float) -> bool:
    """Every condition holds (a request that got no answer fails every condition). Pure."""
    if status is None:
        return False
    for cond in conditions:
        m = _COND.match(cond)
        if m is None:
            return False
        what, op, value = m.groups()
        actual = float(status) if what == "status" else response_time
        wanted = float(value) if what == "status" else parse_duration(value)
        if not _OPS[op](actual, wanted):
            return False
    return True


def probe(check: CheckSpec) -> tuple[int | None, float]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(check.url, timeout=check.timeout) as resp:  # noqa: S310 (http/https only)
            resp.read(65536)
            return int(resp.status), time.monotonic() - start
    except urllib.error.HTTPError as exc:
        return int(exc.code), time.monotonic() - start
    except (OSError, ValueError):
        return None, time.monotonic() - start


class CheckRunner:
    def __init__(self, *, store: Store, clock: Clock, spec: Callable[[], Spec | None],
                 on_change: Callable[[], None]) -> None:
        self.store = store
        self.clock = clock
        self.spec = spec
        self.on_change = on_change
        self.last: dict[str, CheckResult] = {}
        self._due: dict[str, float] = {}

    def failing(self, component: str) -> bool:
        r = self.last.get(component)
        return r is not None and not r.ok

    async def run_once(self) -> None:
        spec = self.spec()
        if spec is None or spec.status_page is None:
            return
        now = self.clock.monotonic()
        due = [c for c in spec.status_page.components if c.check is not None and self._due.get(c.name, 0.0) <= now]
        results = await asyncio.gather(*(asyncio.to_thread(probe, c.check) for c in due if c.check is not None))
        changed = False
        for comp, (status, elapsed) in zip(due, results, strict=True):
            assert comp.check is not None
            self._due[comp.name] = now + comp.check.interval
            result = CheckResult(judge(comp.check.conditions, status, elapsed), status, elapsed, self.clock.time())
            previous = self.last.get(comp.name)
            self.last[comp.name] = result
            self.store.add_check_result(comp.name, int(result.at // 60) * 60, result.ok)
            changed = changed or previous is None or previous.ok != result.ok
        if changed:
            self.on_change()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("status page: a synthetic check failed to run")
            await self.clock.sleep(1.0)
