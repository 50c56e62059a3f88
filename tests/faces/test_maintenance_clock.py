"""Scheduled maintenance on a test clock: notices 24 h before, at start and at end, each once; ``--switch``
turns the router's maintenance on at the start and off at the end (the router's side: test_faces_e2e); the
notice 24 h ahead reaches the receivers (a real SMTP server and a webhook, tests/notify) through the
notifier and its outbox, as the daemon wires them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from notify.conftest import Recorder, Smtp
from shipyard.control.maintenance import AHEAD_S, MaintenanceService, due_notices
from shipyard.control.notices import Notices, receiver_details
from shipyard.control.notify import Notifier
from shipyard.control.notify_outbox import Outbox
from shipyard.errors import BadInput
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store


class RecordingRouter:
    """Stands in for the router link in this unit test; records the maintenance ops sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        self.calls.append({"op": op, **fields})
        return {"maintenance": fields.get("on")}


def test_notices_and_switching_follow_the_clock(store: Store) -> None:
    clock = ManualClock(1_780_000_000.0)
    router = RecordingRouter()
    recorded: list[tuple[str, str, str]] = []
    notices = Notices(lambda env, kind, msg, data: recorded.append((env, kind, msg)))
    hooked: list[str] = []
    notices.hooks.append(lambda n: hooked.append(n.kind))
    changes: list[int] = []
    svc = MaintenanceService(store=store, clock=clock, link=router, notices=notices,
                             on_change=lambda: changes.append(1))
    start = clock.time() + 2 * 86400
    m = svc.schedule("prod", start, 7200, "Database upgrade", True, ["10.0.0.0/8"], "alice")
    assert changes, "scheduling wakes the status page at once"

    async def at(t: float) -> list[str]:
        clock.advance(t - clock.time())
        before = len(hooked)
        await svc.tick()
        return hooked[before:]

    async def run() -> None:
        assert await at(start - AHEAD_S - 1) == []
        assert await at(start - AHEAD_S) == ["maintenance_ahead"]
        assert await at(start - AHEAD_S + 60) == [], "each notice is sent once"
        assert router.calls == []
        assert await at(start) == ["maintenance_start"]
        assert router.calls[-1]["on"] is True and router.calls[-1]["allow"] == ["10.0.0.0/8"]
        assert 0 < router.calls[-1]["retry_after"] <= 7200
        assert await at(start + 3600) == [] and len(router.calls) == 1
        assert await at(start + 7200) == ["maintenance_end"]
        assert router.calls[-1] == {"op": "maintenance", "env": "prod", "on": False, "message": "", "allow": [],
                                    "retry_after": 300}

    asyncio.run(run())
    assert [k for _, k, _ in recorded] == ["notice"] * 3
    assert "in 24 hours" in recorded[0][2] and "Database upgrade" in recorded[0][2]
    final = [x for x in store.maintenances() if x.id == m.id][0]
    assert final.notified == ("ahead", "start", "end") and not final.switched


def test_a_window_scheduled_late_skips_nothing_it_can_still_send(store: Store) -> None:
    clock = ManualClock(1_780_000_000.0)
    svc = MaintenanceService(store=store, clock=clock, link=RecordingRouter(), notices=Notices(lambda *a: None),
                             on_change=lambda: None)
    m = svc.schedule("prod", clock.time() + 600, 60, "Quick fix", False, [], "alice")
    assert due_notices(m, clock.time()) == ["ahead"]
    assert due_notices(m, m.starts_at + 1) == ["start"], "the control plane was down at 'ahead': too late for it"
    assert due_notices(m, m.ends_at + 1) == [], "never started (down all along): no end notice for it either"
    with pytest.raises(BadInput, match="already over"):
        svc.schedule("prod", clock.time() - 7200, 60, "Past", False, [], "alice")
    with pytest.raises(BadInput, match="--allow"):
        svc.schedule("prod", clock.time() + 60, 60, "Bad net", False, ["10.0.0.0/33"], "alice")


def test_the_notice_24h_ahead_reaches_the_receivers(tmp_path: Path, store: Store, smtp: Smtp,
                                                     recorder: Recorder) -> None:
    from .test_reports_email import Specs

    clock = ManualClock(1_780_000_000.0)
    specs: Any = Specs(parse_spec({
        "app": {"name": "svc", "run": "x", "health": {"path": "/h"}},
        "environments": {"prod": {"port": 8000}},
        "notifications": {"receivers": [
            {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
             "from": "shipyard@example.com", "to": ["users@example.com"], "tls_ca_file": str(smtp.ca_file)},
            {"name": "hook", "kind": "webhook", "url": recorder.url("/maintenance")}]},
    }, tmp_path / "shipyard.toml"))
    notifier = Notifier(store=store, clock=clock, specs=specs)
    outbox = Outbox(store=store, clock=clock, specs=specs, secrets=SecretStore(tmp_path / ".shipyard"))
    notifier.on_delivery = outbox.poke
    notices = Notices(lambda env, kind, msg, data: None)
    notices.hooks.append(lambda n: notifier.event(n.env, "notice", n.subject, receiver_details(n)))  # as daemon.py
    svc = MaintenanceService(store=store, clock=clock, link=RecordingRouter(), notices=notices,
                             on_change=lambda: None)
    start = clock.time() + 3 * 86400
    svc.schedule("prod", start, 7200, "Database upgrade", False, [], "alice")
    mails, hooks = len(smtp.messages), len(recorder.at("/maintenance"))

    async def run() -> None:
        sender = asyncio.create_task(outbox.run_forever())
        try:
            clock.advance(start - AHEAD_S - 1 - clock.time())
            await svc.tick()
            assert store.list_deliveries() == [], "nothing before 24 h ahead"
            clock.advance(1)
            await svc.tick()
            for _ in range(400):  # 20 s at most: SMTP with STARTTLS on a loaded machine
                if len(smtp.messages) > mails and len(recorder.at("/maintenance")) > hooks:
                    return
                await asyncio.sleep(0.05)
        finally:
            sender.cancel()

    asyncio.run(run())
    assert len(smtp.messages) == mails + 1 and len(recorder.at("/maintenance")) == hooks + 1, "sent, once"
    _, msg, tls = smtp.messages[-1]
    assert tls and msg["To"] == "users@example.com"
    assert "Scheduled maintenance of prod in 24 hours: Database upgrade" in msg["Subject"]
    (alert,) = recorder.at("/maintenance")[-1]["alerts"]
    assert alert["labels"]["notice"] == "maintenance_ahead" and alert["labels"]["env"] == "prod"
    assert all(d.status == "delivered" for d in store.list_deliveries())
