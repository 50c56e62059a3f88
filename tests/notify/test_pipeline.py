"""Evaluator → notifier → outbox over a real state database, on a test clock: a firing alert becomes one
delivery per receiver in the transaction that saved its state; a restart (new evaluator and notifier on
the same database) neither repeats it nor loses it; exactly one resolved; a silenced alert sends nothing;
the outbox retries a dead receiver with backoff and delivers once it is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alerting.test_history_day import SPEC, make
from shipyard.control.alerts import Evaluator
from shipyard.control.notify import Notifier
from shipyard.control.notify_outbox import Outbox, backoff
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.spec.secrets import SecretStore

from .conftest import Recorder, wait_until

RULES = """
[[alerts]]
name = "Errors"
env = "prod"
expr = "error_rate > 5%"
for = "30s"
severity = "critical"

[metrics]
default_alerts = false

[notifications]
group_wait = "0s"
group_interval = "10s"
repeat_interval = "1h"
[[notifications.receivers]]
name = "hook"
kind = "webhook"
url = "{url}"
[[notifications.receivers]]
name = "other"
kind = "webhook"
url = "{url}-other"
[[notifications.routes]]
match = {{ severity = "critical" }}
receivers = ["hook", "other"]
"""


def drive(clock, rec, ev, seconds: int) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        for _ in range(seconds // 5):
            clock.advance(5)
            if int(clock.time()) % 10 == 0:
                await rec.tick()
            ev.evaluate()

    asyncio.run(go())


def firing_and_resolved(store) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(d.receiver, d.payload["status"]) for d in reversed(store.list_deliveries(100))]


def test_fires_once_survives_restart_resolves_once(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES.format(url="http://127.0.0.1:9/hook"))
    ev = Evaluator(store=store, clock=clock, specs=watch, notifier=Notifier(store=store, clock=clock, specs=watch))
    drive(clock, rec, ev, 120)
    assert store.list_deliveries() == []
    router.error_share = 0.3
    fault = clock.time()
    drive(clock, rec, ev, 80)
    sent = firing_and_resolved(store)
    assert sent == [("hook", "firing"), ("other", "firing")]
    first = min(d.created_at for d in store.list_deliveries())
    assert first - fault <= 30 + 10 + 5, "within for + one point + one evaluation"
    # A restart: the groups come back from the database; nothing is sent again within repeat_interval.
    ev2 = Evaluator(store=store, clock=clock, specs=watch, notifier=Notifier(store=store, clock=clock, specs=watch))
    drive(clock, rec, ev2, 300)
    assert firing_and_resolved(store) == sent
    router.error_share = 0.0
    drive(clock, rec, ev2, 200)
    assert firing_and_resolved(store) == sent + [("hook", "resolved"), ("other", "resolved")]
    drive(clock, rec, ev2, 100)
    assert len(store.list_deliveries()) == 4
    assert store.notify_groups() == []


def test_a_silenced_alert_sends_nothing(tmp_path: Path) -> None:
    store, clock, rec, router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES.format(url="http://127.0.0.1:9/hook"))
    store.add_silence([{"name": "alertname", "value": "Errors", "regex": False}], starts_at=clock.time(),
                      ends_at=clock.time() + 3600, comment="known", created_by="t", at=clock.time())
    ev = Evaluator(store=store, clock=clock, specs=watch, notifier=Notifier(store=store, clock=clock, specs=watch))
    router.error_share = 0.3
    drive(clock, rec, ev, 200)
    assert any(v.state.state == "firing" for v in ev.view("prod"))
    router.error_share = 0.0
    drive(clock, rec, ev, 200)
    assert store.list_deliveries() == []


def test_outbox_retries_with_backoff_and_delivers(tmp_path: Path, recorder: Recorder) -> None:
    store, _clock, _rec, _router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES.format(url=recorder.url("/retry")))
    clock = SystemClock()
    notifier = Notifier(store=store, clock=clock, specs=watch)
    outbox = Outbox(store=store, clock=clock, specs=watch, secrets=SecretStore(tmp_path / ".shipyard"))
    notifier.on_delivery = outbox.poke
    recorder.failing.add("/retry")
    assert backoff(1) == 2 and backoff(2) == 4 and backoff(20) == 300

    async def go() -> None:
        task = asyncio.create_task(outbox.run_forever())
        try:
            assert notifier.event("prod", "deployment_failed", "deploy of r2 on prod failed: boom", {}) == 2
            await asyncio.to_thread(wait_until, lambda: any(d.attempts for d in store.list_deliveries()
                                                           if d.receiver == "hook"), 10)
            d = next(d for d in store.list_deliveries() if d.receiver == "hook")
            assert d.status == "pending" and "HTTP 503" in (d.last_error or "")
            assert d.next_attempt_at > d.created_at
            recorder.failing.discard("/retry")
            await asyncio.to_thread(wait_until, lambda: store.delivery(d.id).status == "delivered", 15)  # type: ignore[union-attr]
        finally:
            task.cancel()

    asyncio.run(go())
    posts = recorder.at("/retry")
    assert len(posts) == 1 and posts[0]["alerts"][0]["labels"]["alertname"] == "DeploymentFailed"
    assert posts[0]["alerts"][0]["annotations"]["summary"] == "deploy of r2 on prod failed: boom"


def test_outbox_sends_each_delivery_once_under_many_wakeups(tmp_path: Path, recorder: Recorder) -> None:
    """Deliveries listed by a read that raced with their own attempt are not sent a second time."""
    store, _clock, _rec, _router, watch = make(tmp_path)
    (tmp_path / "shipyard.toml").write_text(SPEC + RULES.format(url=recorder.url("/once")))
    clock = SystemClock()
    notifier = Notifier(store=store, clock=clock, specs=watch)
    outbox = Outbox(store=store, clock=clock, specs=watch, secrets=SecretStore(tmp_path / ".shipyard"))
    notifier.on_delivery = outbox.poke

    async def go() -> None:
        task = asyncio.create_task(outbox.run_forever())
        try:
            for i in range(20):
                notifier.event("prod", "deployment_failed", f"failure {i}", {})
                await asyncio.sleep(0.01)
            await asyncio.to_thread(wait_until, lambda: all(d.status == "delivered"
                                                           for d in store.list_deliveries(100)), 20)
            await asyncio.sleep(0.5)
        finally:
            task.cancel()

    asyncio.run(go())
    summaries = [p["alerts"][0]["annotations"]["summary"] for p in recorder.at("/once")]
    assert sorted(summaries) == sorted(f"failure {i}" for i in range(20)), summaries
