"""Maintenance mode: the router's ``maintenance`` op (503 with Retry-After and the page; ``allow`` networks
pass) switched by hand (``maintenance on/off``) or at a scheduled window's times (``--switch``).

Every maintenance, manual or scheduled, is a ``maintenances`` row, so the status page shows it and its
minutes are left out of the uptime. Notices go out 24 h before, at the start and at the end (``due_notices``,
pure); a restart finds what was already sent in the row.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shipyard.control.notices import Notice, Notices
from shipyard.errors import BadInput, NotFound, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store
from shipyard.primitives.store.incidents import MaintenanceRec

log = logging.getLogger("shipyard.control")

AHEAD_S = 24 * 3600.0
OPEN_ENDED_S = 10 * 365 * 86400.0  # `maintenance on` without an end: until `maintenance off`
MAX_RETRY_AFTER = 86400


class RouterCalls(Protocol):
    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]: ...


def due_notices(m: MaintenanceRec, now: float) -> list[str]:
    """The notices of ``m`` due at ``now`` and not yet sent, in order. Pure."""
    due: list[str] = []
    if "ahead" not in m.notified and m.starts_at - AHEAD_S <= now < m.starts_at:
        due.append("ahead")
    if "start" not in m.notified and m.starts_at <= now < m.ends_at:
        due.append("start")
    if "end" not in m.notified and now >= m.ends_at and ("start" in m.notified or "start" in due):
        due.append("end")
    return due


def check_networks(allow: Sequence[str]) -> list[str]:
    out = []
    for n in allow:
        try:
            out.append(str(ipaddress.ip_network(n, strict=False)))
        except ValueError as exc:
            raise BadInput(f"--allow: {exc}") from None
    return out


def retry_after(m: MaintenanceRec, now: float) -> int:
    left = m.ends_at - now
    return 300 if m.ends_at - m.starts_at >= OPEN_ENDED_S / 2 else int(min(MAX_RETRY_AFTER, max(1.0, left)))


class MaintenanceService:
    def __init__(self, *, store: Store, clock: Clock, link: RouterCalls, notices: Notices,
                 on_change: Callable[[], None]) -> None:
        self.store = store
        self.clock = clock
        self.link = link
        self.notices = notices
        self.on_change = on_change

    def active(self, env: str) -> MaintenanceRec | None:
        now = self.clock.time()
        return next((m for m in self.store.maintenances(since=now) if m.env == env and m.starts_at <= now < m.ends_at),
                    None)

    async def on(self, env: str, message: str, allow: Sequence[str], performer: str) -> MaintenanceRec:
        now = self.clock.time()
        nets = check_networks(allow)
        mid = self.store.add_maintenance(env, message or "Down for maintenance", now, now + OPEN_ENDED_S, True,
                                         nets, now, performer)
        self.store.mark_maintenance(mid, notified=["ahead"])  # a manual switch has no "ahead"
        try:
            await self._router(env, on=True, message=message, allow=nets, retry=300)
        except ShipyardError:
            self.store.mark_maintenance(mid, cancelled_at=now)
            raise
        self.store.mark_maintenance(mid, switched=True)
        await self.tick()
        return self._get(mid)

    async def off(self, env: str, performer: str) -> list[MaintenanceRec]:
        """End every maintenance of ``env`` in progress now (manual or scheduled), switching the router back."""
        now = self.clock.time()
        ended = [m for m in self.store.maintenances(since=now) if m.env == env and m.starts_at <= now < m.ends_at]
        for m in ended:
            self.store.mark_maintenance(m.id, ends_at=now)
        await self._router(env, on=False)
        for m in ended:
            self.store.mark_maintenance(m.id, switched=False)
        await self.tick()
        return [self._get(m.id) for m in ended]

    def schedule(self, env: str, starts_at: float, duration: float, message: str, switch: bool,
                 allow: Sequence[str], performer: str) -> MaintenanceRec:
        now = self.clock.time()
        if duration <= 0:
            raise BadInput("--for: must be a positive duration, e.g. 2h")
        if starts_at + duration <= now:
            raise BadInput("--at/--for: that window is already over")
        if not message:
            raise BadInput("-m/--message is required: say what the maintenance is for (it is public)")
        mid = self.store.add_maintenance(env, message[:500], starts_at, starts_at + duration, switch,
                                         check_networks(allow), now, performer)
        self.on_change()
        return self._get(mid)

    def cancel(self, maintenance_id: int) -> MaintenanceRec:
        rec = self._get(maintenance_id)
        self.store.mark_maintenance(maintenance_id, cancelled_at=self.clock.time())
        self.on_change()
        return rec

    def _get(self, maintenance_id: int) -> MaintenanceRec:
        found = [m for m in self.store.maintenances() if m.id == maintenance_id]
        if not found:
            raise NotFound(f"no scheduled maintenance {maintenance_id}")
        return found[0]

    async def tick(self) -> None:
        """Send the notices due and switch the router at the windows' times."""
        now = self.clock.time()
        changed = False
        for m in self.store.maintenances(since=now - 86400):
            due = due_notices(m, now)
            if due:
                for kind in due:
                    self.notices.send(_notice(m, kind, now))
                self.store.mark_maintenance(m.id, notified=[*m.notified, *due])
                changed = True
            if m.switch:
                changed = await self._switch(m, now) or changed
        if changed:
            self.on_change()

    async def _switch(self, m: MaintenanceRec, now: float) -> bool:
        try:
            return await self._switch_router(m, now)
        except ShipyardError as err:
            log.warning("maintenance %d: %s", m.id, err)
            return False

    async def _switch_router(self, m: MaintenanceRec, now: float) -> bool:
        inside = m.starts_at <= now < m.ends_at
        if inside and not m.switched:
            await self._router(m.env, on=True, message=m.message, allow=m.allow,
                               retry=retry_after(m, now))
            self.store.mark_maintenance(m.id, switched=True)
            return True
        if not inside and m.switched and now >= m.ends_at:
            if self.active(m.env) is None:
                await self._router(m.env, on=False)
            self.store.mark_maintenance(m.id, switched=False)
            return True
        return False

    async def _router(self, env: str, *, on: bool, message: str = "", allow: Sequence[str] = (),
                      retry: int = 300) -> None:
        try:
            await self.link.call("maintenance", env=env, on=on, message=message, allow=list(allow),
                                 retry_after=retry)
        except ShipyardError as err:
            raise ShipyardError(f"the router refused maintenance {'on' if on else 'off'} for {env}: {err} "
                                f"(is {env} deployed?)") from err

    async def run_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("maintenance: a tick failed")
            await asyncio.sleep(interval)


def _notice(m: MaintenanceRec, kind: str, now: float) -> Notice:
    subject = {"ahead": f"Scheduled maintenance of {m.env} in 24 hours: {m.message}",
               "start": f"Maintenance of {m.env} has started: {m.message}",
               "end": f"Maintenance of {m.env} is over: {m.message}"}[kind]
    return Notice(f"maintenance_{kind}", m.env, subject, m.message, now,
                  {"maintenance": m.id, "starts_at": m.starts_at, "ends_at": m.ends_at})
