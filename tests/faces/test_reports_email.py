"""Scheduled and after-deploy reports reach the receivers: kept under .shipyard/reports/, e-mailed with the
HTML report attached through a real SMTP server with STARTTLS (aiosmtpd, tests/notify), a webhook told the
file's path; the 1-hour checkpoint and the daily report fall due on a test clock, once, also across a
restart."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from notify.conftest import Recorder, Smtp, wait_until
from shipyard.control.notices import Notice, Notices, receiver_details
from shipyard.control.notify import Notifier
from shipyard.control.notify_outbox import Outbox
from shipyard.control.reports import ReportScheduler, ReportService
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store, open_store

START = datetime.fromisoformat("2026-12-01T06:00:00+00:00").timestamp()


class Specs:
    """What the notifier and the outbox read the spec through (SpecWatch's ``current``)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def current(self) -> Spec:
        return self.spec


def _spec(tmp: Path, smtp: Smtp, recorder: Recorder) -> Spec:
    return parse_spec({
        "app": {"name": "svc", "run": "x", "health": {"path": "/h"}},
        "environments": {"prod": {"port": 8000}},
        "reports": {"after_deploy": "1h", "daily": "0 9 * * *"},
        "notifications": {"receivers": [
            {"name": "mail", "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
             "from": "shipyard@example.com", "to": ["managers@example.com"], "tls_ca_file": str(smtp.ca_file)},
            {"name": "hook", "kind": "webhook", "url": recorder.url("/reports")},
            {"name": "chat", "kind": "slack", "url_secret": "SLACK_URL"}]},
    }, tmp / "shipyard.toml")


class Wired:
    """The control plane's report path as daemon.py wires it: scheduler → notice → notifier → outbox."""

    def __init__(self, tmp: Path, store: Store, clock: ManualClock, spec: Spec) -> None:
        specs: Any = Specs(spec)
        self.notifier = Notifier(store=store, clock=clock, specs=specs)
        self.outbox = Outbox(store=store, clock=clock, specs=specs, secrets=SecretStore(tmp / ".shipyard"))
        notices = Notices(lambda env, kind, msg, data: None)
        notices.hooks.append(lambda n: self.notifier.event(n.env, "notice", n.subject, receiver_details(n)))
        self.service = ReportService(store=store, clock=clock, out=tmp / ".shipyard" / "reports")
        self.scheduler = ReportScheduler(service=self.service, spec=lambda: spec, notify=lambda env, s, b, d: (
            notices.send(Notice("report", env, s, b, clock.time(), d))))


def _deliver(w: Wired, done: Any) -> None:
    async def go() -> None:
        task = asyncio.create_task(w.outbox.run_forever())
        try:
            for _ in range(200):
                if done():
                    return
                await asyncio.sleep(0.05)
        finally:
            task.cancel()

    asyncio.run(go())


def test_the_after_deploy_checkpoint_is_emailed_with_the_report_and_the_daily_survives_a_restart(
        tmp_path: Path, smtp: Smtp, recorder: Recorder) -> None:
    clock = ManualClock(START)
    store = open_store(None, tmp_path / ".shipyard")
    try:
        spec = _spec(tmp_path, smtp, recorder)
        # A deploy by alice finishes at 06:00:40; the minutes after it carry traffic, 1 in 1000 failing.
        dep = store.begin_deployment("prod", kind="deploy", release="r1", previous_release=None,
                                     strategy="blue-green", plan=[], started_at=clock.time())
        store.add_audit(clock.time(), "alice", "deploy", "prod", f"deployment {dep.id}", {"release": "r1"})
        clock.advance(40)
        store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=clock.time())
        finished = clock.time()
        store.write_points("minute", [{"env": "prod", "release": "r1", "t": int(finished) // 60 * 60 + 60 * k,
                                       "requests": 1000, "errors": 1, "p50": 0.01, "p95": 0.03, "p99": 0.08,
                                       "up": 1, "instances": 2, "health_failures": 0, "restarts": 0}
                                      for k in range(1, 60)])
        SecretStore(tmp_path / ".shipyard").set("prod", {"SLACK_URL": recorder.url("/slack/T0/B0/secret")})
        w = Wired(tmp_path, store, clock, spec)
        assert w.scheduler.tick() == []
        clock.advance(3599)
        assert w.scheduler.tick() == [], "not before the hour is up"
        clock.advance(1)
        (kept,) = w.scheduler.tick()
        html = Path(kept)
        assert html.parent == tmp_path / ".shipyard" / "reports" and html.with_suffix(".json").exists()
        assert html.name.startswith("prod-1h-") and (html.stat().st_mode & 0o777) == 0o600
        mails, hooks, chats = len(smtp.messages), len(recorder.at("/reports")), len(recorder.at("/slack/T0/B0/secret"))
        _deliver(w, lambda: len(smtp.messages) > mails and len(recorder.at("/reports")) > hooks
                 and len(recorder.at("/slack/T0/B0/secret")) > chats)

        _, msg, tls = smtp.messages[-1]
        assert tls and msg["To"] == "managers@example.com"
        assert msg["Subject"] == f"svc · prod · 1h report (after deploy #{dep.id})"
        text = msg.get_body(("plain",)).get_content()
        assert "availability 99.900%, 1 deploys" in text and f"report: {html}" in text
        (attached,) = list(msg.iter_attachments())
        assert attached.get_filename() == html.name and attached.get_content_type() == "text/html"
        body = attached.get_payload(decode=True).decode()
        assert body == html.read_text() and body.startswith("<!doctype html>") and "alice" in body
        hook = recorder.at("/reports")[-1]
        (alert,) = hook["alerts"]
        assert alert["annotations"]["report"] == str(html) and alert["labels"]["notice"] == "report"
        chat = recorder.at("/slack/T0/B0/secret")[-1]
        assert chat["text"].startswith(f"svc · prod · 1h report (after deploy #{dep.id})")
        assert f"report: {html}" in chat["text"] and "availability 99.900%" in chat["text"]
        assert "<html" not in str(hook) + str(chat), "chat and webhooks get the path, not the report"

        # Sent once: the next tick, and a restarted scheduler, send nothing more.
        clock.advance(60)
        assert w.scheduler.tick() == []
        # Down from 08:10 to 09:30: the 09:00 daily falls due while nothing runs; sent once when back.
        clock.advance(datetime.fromisoformat("2026-12-01T08:10:00+00:00").timestamp() - clock.time())
        assert w.scheduler.tick() == []
        clock.advance(80 * 60)
        again = Wired(tmp_path, store, clock, spec)
        (daily,) = again.scheduler.tick()
        assert Path(daily).name.startswith("prod-24h-")
        assert again.scheduler.tick() == [] and Wired(tmp_path, store, clock, spec).scheduler.tick() == []
        mails = len(smtp.messages)
        _deliver(again, lambda: len(smtp.messages) > mails)
        _, msg, _ = smtp.messages[-1]
        assert msg["Subject"] == "svc · prod · 24h report (daily)"
        assert [a.get_filename() for a in msg.iter_attachments()] == [Path(daily).name]
    finally:
        store.close()


def test_a_report_file_gone_before_sending_is_said_not_attached(tmp_path: Path, smtp: Smtp) -> None:
    from shipyard.control.notify_send import send
    from shipyard.primitives.spec.notifications import ReceiverSpec

    r = ReceiverSpec.model_validate({"name": "mail", "kind": "email", "smtp_host": "127.0.0.1",
                                     "smtp_port": smtp.port, "from": "a@example.com", "to": ["b@example.com"],
                                     "tls_ca_file": str(smtp.ca_file)})
    gone = tmp_path / "reports" / "prod-24h-20261201T090000Z.html"
    note = {"kind": "event", "status": "firing", "group_labels": {}, "alerts": [
        {"status": "firing", "labels": {"alertname": "Notice", "env": "prod"}, "starts_at": START,
         "annotations": {"title": "svc · prod · 24h report (daily)", "summary": "availability -",
                         "report": str(gone)}}]}
    before = len(smtp.messages)
    send(r, note, {}, START)
    assert wait_until(lambda: len(smtp.messages) > before, 10)
    _, msg, _ = smtp.messages[-1]
    assert list(msg.iter_attachments()) == []
    assert f"(the report {gone.name} is no longer on disk)" in msg.get_content()
