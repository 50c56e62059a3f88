"""What each kind of receiver is sent for a notification (pure: JSON in, bodies out).

- ``webhook``: Alertmanager's webhook payload, version 4, so anything that consumes Alertmanager works;
- ``slack``: an incoming-webhook message, ``text`` (the fallback and notifications) plus ``blocks``;
- ``email``: a subject and a plain-text body (a report's HTML file is attached by the sender);
- ``alertmanager``: the alerts as ``POST /api/v2/alerts`` takes them (Alertmanager groups and routes them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


def rfc3339(t: float | None) -> str:
    if t is None:
        return ZERO_TIME
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def title(note: Mapping[str, Any]) -> str:
    """``[FIRING:2] HighErrorRate prod`` as Alertmanager's default templates say it; an event's own title."""
    alerts = note["alerts"]
    if note.get("kind") == "event":
        return str(alerts[0]["annotations"].get("title") or alerts[0]["labels"].get("alertname", "event"))
    firing = sum(1 for a in alerts if a["status"] == "firing")
    status = note["status"].upper() + (f":{firing}" if note["status"] == "firing" else "")
    words = " ".join(v for _, v in sorted(note["group_labels"].items()) if v)
    return f"[{status}] {words}".strip()


def _line(a: Mapping[str, Any]) -> str:
    ann = a["annotations"]
    text = ann.get("summary") or ann.get("description") or a["labels"].get("alertname", "")
    mark = "RESOLVED" if a["status"] == "resolved" else "FIRING"
    return f"{mark} {text}"


def text_body(note: Mapping[str, Any]) -> str:
    lines = [title(note), ""]
    for a in note["alerts"]:
        ann = a["annotations"]
        lines.append(("- " + _line(a)) if note.get("kind") != "event" else str(ann.get("summary", "")))
        for key in ("description", "runbook_url", "report"):
            if ann.get(key):
                lines.append(f"  {key}: {ann[key]}")
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()))
        lines.append(f"  labels: {labels}")
        lines.append(f"  since: {rfc3339(a['starts_at'])}"
                     + (f"  ended: {rfc3339(a['ends_at'])}" if a.get("ends_at") else ""))
    return "\n".join(lines) + "\n"


def webhook_payload(note: Mapping[str, Any], external_url: str = "") -> dict[str, Any]:
    return {
        "version": "4", "groupKey": note["group_key"], "truncatedAlerts": 0, "status": note["status"],
        "receiver": note["receiver"], "groupLabels": note["group_labels"], "commonLabels": note["common_labels"],
        "commonAnnotations": note["common_annotations"], "externalURL": external_url,
        "alerts": [{"status": a["status"], "labels": a["labels"], "annotations": a["annotations"],
                    "startsAt": rfc3339(a["starts_at"]), "endsAt": rfc3339(a.get("ends_at")),
                    "generatorURL": a["annotations"].get("runbook_url", ""), "fingerprint": a["fingerprint"]}
                   for a in note["alerts"]],
    }


def slack_payload(note: Mapping[str, Any]) -> dict[str, Any]:
    head = title(note)
    body = text_body(note).split("\n", 2)[-1].strip()
    return {"text": f"{head}\n{body}",
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900] or head}}]}


def email_message(note: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, plain-text body)."""
    return title(note), text_body(note)


def alertmanager_alerts(note: Mapping[str, Any], now: float, hold_s: float) -> list[dict[str, Any]]:
    """A firing alert ends ``hold_s`` from now unless sent again (shipyard re-sends within that);
    a resolved one carries its end."""
    return [{"labels": a["labels"], "annotations": a["annotations"], "startsAt": rfc3339(a["starts_at"]),
             "endsAt": rfc3339(a["ends_at"] if a["status"] == "resolved" and a.get("ends_at") else now + hold_s),
             "generatorURL": a["annotations"].get("runbook_url", "")}
            for a in note["alerts"]]
