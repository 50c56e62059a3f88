"""Writes the status page's static files whenever what they say changes.

The status-page process (``python -m shipyard.statuspage``) only serves these files, so the page keeps
its last state while the control plane is down. Files are replaced atomically (write, fsync, rename):
a reader sees the old page or the new one, never half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from shipyard.control.statuspage.feeds import atom, dumps, page_url, status, summary
from shipyard.control.statuspage.html import render_html
from shipyard.control.statuspage.model import (
    DAY,
    DAYS,
    ComponentInputs,
    DayCount,
    Page,
    PageInputs,
    build_page,
    day_counts,
    to_json,
)
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.faces import ComponentSpec, StatusPageSpec
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")

FILES = ("index.html", "api/v2/summary.json", "api/v2/status.json", "history.atom")
REFRESH_S = 5.0  # at least this often (new minute points, checks); incident and maintenance changes wake it


class StatusWriter:
    def __init__(self, *, store: Store, clock: Clock, spec: Callable[[], Spec | None], out: Path,
                 critical_firing: Callable[[str], bool], check_failing: Callable[[str], bool]) -> None:
        self.store = store
        self.clock = clock
        self.spec = spec
        self.out = out
        self.critical_firing = critical_firing
        self.check_failing = check_failing
        self.hostname = socket.gethostname()  # names the page when it listens on every address
        self.wake = asyncio.Event()
        self.writes = 0
        self._signature: str | None = None
        # Past days never change (but for a maintenance window added over them): kept per component.
        self._past: dict[str, tuple[tuple[int, str], list[DayCount]]] = {}

    def page(self, page_spec: StatusPageSpec) -> Page:
        now = self.clock.time()
        maints = self.store.maintenances(since=now - DAYS * DAY)
        windows = {env: [(m.starts_at, min(m.ends_at, now)) for m in maints if m.env == env and m.starts_at <= now]
                   for env in {m.env for m in maints}}
        comps = [ComponentInputs(c.name, c.env, self._days(c, windows.get(c.env or "", []), now),
                                 degraded=(self.critical_firing(c.env) if c.env else self.check_failing(c.name)))
                 for c in page_spec.components]
        return build_page(PageInputs(spec=page_spec, now=now, components=comps,
                                     incidents=self.store.incidents(since=now - DAYS * DAY),
                                     maintenances=[m for m in maints if m.ends_at > now - DAYS * DAY]))

    def refresh(self) -> bool:
        """Write the files when what they say changed; True when written."""
        spec = self.spec()
        if spec is None or spec.status_page is None:
            return False
        page = self.page(spec.status_page)
        url = page_url(spec.status_page, self.hostname)
        signature = json.dumps([url, to_json(page), [c.days for c in page.components],
                                [(m.id, m.starts_at <= page.now) for m in page.maintenances],
                                [(i.id, len(i.updates)) for i in page.incidents]], default=str)
        if signature == self._signature and all((self.out / f).exists() for f in FILES):
            return False
        self._signature = signature
        docs = {"index.html": render_html(page), "api/v2/summary.json": dumps(summary(page, url)),
                "api/v2/status.json": dumps(status(page, url)), "history.atom": atom(page, url)}
        for name, text in docs.items():
            _replace(self.out / name, text)
        self.writes += 1
        return True

    async def run_forever(self, interval: float = REFRESH_S) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:
                log.exception("status page: cannot write its files")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)
            self.wake.clear()

    def _days(self, comp: ComponentSpec, maintenance: list[tuple[float, float]], now: float) -> list[DayCount]:
        today = int(now // DAY) * DAY
        key = (today, json.dumps(maintenance))
        cached = self._past.get(comp.name)
        if cached is None or cached[0] != key:
            past = [d for d in day_counts(self._minutes(comp, today - (DAYS - 1) * DAY, today), maintenance)
                    if d.day < today]
            self._past[comp.name] = cached = (key, past)
        return [*cached[1], *day_counts(self._minutes(comp, today, None), maintenance)]

    def _minutes(self, comp: ComponentSpec, since: float, until: float | None) -> list[tuple[int, float, float]]:
        if comp.env is None:
            return [(t, total, total - ok) for t, total, ok in self.store.check_minutes(comp.name, since)
                    if until is None or t < until]
        per_t: dict[int, list[float]] = {}
        for p in self.store.read_points("minute", comp.env, since, until):
            acc = per_t.setdefault(int(p["t"]), [0.0, 0.0])
            acc[0] += p["requests"]
            acc[1] += p["errors"]
        return [(t, v[0], v[1]) for t, v in sorted(per_t.items())]


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # The files are public by design: readable by the status-page process whatever the umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
