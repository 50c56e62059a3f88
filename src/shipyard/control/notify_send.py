"""Sending one notification to one receiver (blocking; the notifier runs it in a worker thread).

Slack and webhooks are an HTTP POST of JSON, Alertmanager ``POST /api/v2/alerts``, email SMTP with
STARTTLS (certificates verified: the system's CAs, or the receiver's ``tls_ca_file``), a report's HTML
file attached. A receiver's URL and password are secrets: every error message is masked before it is
logged, stored or shown.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from shipyard.engine.alerting.notify_payloads import (
    alertmanager_alerts,
    email_message,
    slack_payload,
    webhook_payload,
)
from shipyard.errors import ShipyardError
from shipyard.primitives.spec.notifications import ReceiverSpec

MAX_ATTACHMENT = 10 * 1024 * 1024  # a 7-day report is ~100 kB; anything bigger is not one of ours


class SendFailed(ShipyardError):
    """A receiver refused or could not be reached; the message never holds a secret."""


def mask(text: str, secrets: Iterable[str]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def send(receiver: ReceiverSpec, note: Mapping[str, Any], secrets: Mapping[str, str], now: float) -> None:
    """Deliver ``note`` (a stored ``Notification.to_json()``) or raise ``SendFailed``."""
    values = [secrets[name] for _, name in receiver.secret_names() if name in secrets]
    try:
        _send(receiver, note, secrets, now)
    except SendFailed as err:
        raise SendFailed(mask(str(err), values)) from None
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        raise SendFailed(mask(f"{receiver.kind} receiver {receiver.name}: {_describe(exc)}", values)) from None


def _secret(receiver: ReceiverSpec, key: str, secrets: Mapping[str, str]) -> str:
    name = getattr(receiver, key)
    value = secrets.get(name) if name else None
    if not value:
        raise SendFailed(f"{receiver.kind} receiver {receiver.name}: the secret {name} is not set")
    return value


def _send(receiver: ReceiverSpec, note: Mapping[str, Any], secrets: Mapping[str, str], now: float) -> None:
    if receiver.kind == "slack":
        post_json(_secret(receiver, "url_secret", secrets), slack_payload(note), receiver)
    elif receiver.kind == "webhook":
        url = receiver.url or _secret(receiver, "url_secret", secrets)
        post_json(url, webhook_payload(note), receiver)
    elif receiver.kind == "alertmanager":
        assert receiver.url is not None
        hold = float(note.get("hold_s") or 3600.0)
        post_json(receiver.url.rstrip("/") + "/api/v2/alerts", alertmanager_alerts(note, now, hold), receiver)
    else:
        send_email(receiver, note, secrets)


def post_json(url: str, body: Any, receiver: ReceiverSpec) -> None:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "shipyard"})
    try:
        with urllib.request.urlopen(req, timeout=receiver.timeout) as resp:
            resp.read(65536)
    except urllib.error.HTTPError as exc:
        raise SendFailed(f"{receiver.kind} receiver {receiver.name}: HTTP {exc.code} {exc.reason}") from None


def send_email(receiver: ReceiverSpec, note: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
    assert receiver.smtp_host is not None and receiver.from_ is not None
    subject, body = email_message(note)
    reports, missing = report_files(note)
    if missing:
        body += "".join(f"\n(the report {m} is no longer on disk)" for m in missing)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = receiver.from_
    msg["To"] = ", ".join(receiver.to)
    msg.set_content(body)
    for path in reports:
        # As bytes (base64): the file arrives exactly as kept, long lines and all.
        msg.add_attachment(path.read_bytes(), maintype="text", subtype="html", filename=path.name)
    with smtplib.SMTP(receiver.smtp_host, receiver.smtp_port, timeout=receiver.timeout) as smtp:
        smtp.ehlo()
        if receiver.starttls:
            ctx = ssl.create_default_context(cafile=receiver.tls_ca_file)
            smtp.starttls(context=ctx)
            smtp.ehlo()
        if receiver.username:
            smtp.login(receiver.username, _secret(receiver, "password_secret", secrets))
        smtp.send_message(msg)


def report_files(note: Mapping[str, Any]) -> tuple[list[Path], list[str]]:
    """The HTML reports a notification names (``report`` annotation: a file the control plane kept under
    ``.shipyard/reports/``), read when sent; (files to attach, names that are gone or not a report)."""
    found: list[Path] = []
    missing: list[str] = []
    for a in note.get("alerts", []):
        name = (a.get("annotations") or {}).get("report")
        if not name:
            continue
        path = Path(name)
        if path.suffix == ".html" and path.parent.name == "reports" and path.is_file() \
                and path.stat().st_size <= MAX_ATTACHMENT:
            found.append(path)
        else:
            missing.append(path.name)
    return found, missing


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({_describe(exc.reason) if isinstance(exc.reason, BaseException) else exc.reason})"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error
        return f"SMTP {exc.smtp_code} {said.decode(errors='replace') if isinstance(said, bytes) else said}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc) or type(exc).__name__
