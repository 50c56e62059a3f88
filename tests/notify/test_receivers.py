"""Each kind of receiver against a real counterpart: Slack and webhook posts to a local HTTP server,
email through a real SMTP server with STARTTLS (aiosmtpd), alerts forwarded to a real Alertmanager."""

from __future__ import annotations

import time

import pytest

from shipyard.control.notify_send import SendFailed, send
from shipyard.engine.alerting.notify import Alert, Notification, labels_of
from shipyard.primitives.spec.notifications import ReceiverSpec

from .conftest import Alertmanager, Recorder, Smtp, free_port, wait_until

SECRET_URL_PATH = "/services/T000/B000/very-secret-token"


def note(receiver: str, status: str = "firing", t: float = 1_700_000_000.0) -> dict:  # type: ignore[type-arg]
    a = Alert(labels_of({"alertname": "HighErrorRate", "env": "prod", "severity": "critical"}),
              labels_of({"summary": "prod: 21% of requests fail", "runbook_url": "https://wiki.example/rb"}), t,
              t + 60 if status == "resolved" else None, status)  # type: ignore[arg-type]
    n = Notification(receiver, "0:alertname=HighErrorRate,env=prod", status, labels_of(  # type: ignore[arg-type]
        {"alertname": "HighErrorRate", "env": "prod"}), (a,)).to_json()
    return {**n, "hold_s": 600.0}


def test_slack_text_and_blocks(recorder: Recorder) -> None:
    r = ReceiverSpec.model_validate({"name": "ops-slack", "kind": "slack", "url_secret": "SLACK_URL"})
    send(r, note("ops-slack"), {"SLACK_URL": recorder.url(SECRET_URL_PATH)}, time.time())
    body = recorder.at(SECRET_URL_PATH)[-1]
    assert body["text"].startswith("[FIRING:1] HighErrorRate prod")
    assert "21% of requests fail" in body["text"]
    assert body["blocks"][0]["type"] == "header" and body["blocks"][1]["type"] == "section"


def test_webhook_is_alertmanager_v4(recorder: Recorder) -> None:
    r = ReceiverSpec.model_validate({"name": "hook", "kind": "webhook", "url": recorder.url("/hook")})
    send(r, note("hook", "resolved"), {}, time.time())
    body = recorder.at("/hook")[-1]
    assert body["version"] == "4" and body["status"] == "resolved" and body["receiver"] == "hook"
    assert body["groupLabels"] == {"alertname": "HighErrorRate", "env": "prod"}
    assert body["commonLabels"]["severity"] == "critical"
    (a,) = body["alerts"]
    assert a["status"] == "resolved" and a["labels"]["alertname"] == "HighErrorRate"
    assert a["startsAt"].startswith("2023-11-14T22:13:20") and a["endsAt"].startswith("2023-11-14T22:14:20")
    assert set(a) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}


def test_email_over_starttls(smtp: Smtp) -> None:
    r = ReceiverSpec.model_validate({"name": "mail", "kind": "email", "smtp_host": "127.0.0.1",
                                     "smtp_port": smtp.port, "from": "shipyard@example.com",
                                     "to": ["ops@example.com"], "tls_ca_file": str(smtp.ca_file)})
    before = len(smtp.messages)
    send(r, note("mail"), {}, time.time())
    assert wait_until(lambda: len(smtp.messages) > before, 10)
    _, msg, tls = smtp.messages[-1]
    assert tls, "the message went over STARTTLS"
    assert msg["Subject"] == "[FIRING:1] HighErrorRate prod" and msg["To"] == "ops@example.com"
    assert "21% of requests fail" in msg.get_content()


def test_email_refuses_an_unknown_certificate(smtp: Smtp) -> None:
    r = ReceiverSpec.model_validate({"name": "mail", "kind": "email", "smtp_host": "127.0.0.1",
                                     "smtp_port": smtp.port, "from": "a@example.com", "to": ["b@example.com"]})
    with pytest.raises(SendFailed, match="TLS|certificate"):
        send(r, note("mail"), {}, time.time())


def test_forwarded_to_a_real_alertmanager(alertmanager: Alertmanager) -> None:
    r = ReceiverSpec.model_validate({"name": "am", "kind": "alertmanager", "url": alertmanager.url})
    send(r, note("am", t=time.time() - 30), {}, time.time())

    def found() -> list[dict]:  # type: ignore[type-arg]
        return [a for a in alertmanager.alerts() if a["labels"].get("alertname") == "HighErrorRate"]

    assert wait_until(found, 10)
    a = found()[0]
    assert a["labels"] == {"alertname": "HighErrorRate", "env": "prod", "severity": "critical"}
    assert a["annotations"]["summary"] == "prod: 21% of requests fail"
    assert a["status"]["state"] == "active"


def test_a_dead_receiver_fails_without_showing_its_url(recorder: Recorder) -> None:
    dead = f"http://127.0.0.1:{free_port()}{SECRET_URL_PATH}"
    r = ReceiverSpec.model_validate({"name": "ops-slack", "kind": "slack", "url_secret": "SLACK_URL"})
    with pytest.raises(SendFailed) as err:
        send(r, note("ops-slack"), {"SLACK_URL": dead}, time.time())
    assert "very-secret-token" not in str(err.value) and "refused" in str(err.value)
    recorder.failing.add(SECRET_URL_PATH)
    try:
        with pytest.raises(SendFailed, match="HTTP 503") as err:
            send(r, note("ops-slack"), {"SLACK_URL": recorder.url(SECRET_URL_PATH)}, time.time())
        assert "very-secret-token" not in str(err.value)
    finally:
        recorder.failing.discard(SECRET_URL_PATH)
