"""Notices meant for people (maintenance 24 h ahead, at its start and end; incidents opened and updated).

Each notice is recorded as a ``notice`` event and handed to every hook. The receivers (e-mail, chat,
webhooks) connect here: the daemon's hook routes each notice as a ``notice`` lifecycle event with
``receiver_details``; a report's notice names its kept HTML file, which e-mail receivers attach and chat
and webhook receivers get as a path.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("shipyard.control")


@dataclass(frozen=True)
class Notice:
    kind: str  # maintenance_ahead | maintenance_start | maintenance_end | incident_open | incident_update | report
    env: str
    subject: str
    body: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)


class Notices:
    def __init__(self, record: Callable[[str, str, str, dict[str, Any]], None]) -> None:
        self.record = record  # EventLog.add (env, kind, message, data)
        self.hooks: list[Callable[[Notice], None]] = []
        self.sent: deque[Notice] = deque(maxlen=200)

    def send(self, notice: Notice) -> None:
        self.sent.append(notice)
        self.record(notice.env, "notice", notice.subject, {k: v for k, v in asdict(notice).items()
                                                               if k not in ("env", "subject")})
        for hook in self.hooks:
            try:
                hook(notice)
            except Exception:
                log.exception("a notice hook failed (%s)", notice.kind)


def receiver_details(n: Notice) -> dict[str, Any]:
    """What the notifier's ``event`` gets for a notice: its body, its kind as a label, and a report's file
    as the ``report`` annotation (receivers read the file when they send, so no report sits in the outbox)."""
    details: dict[str, Any] = {"description": n.body, "labels": {"notice": n.kind}}
    if n.data.get("report"):
        details["annotations"] = {"report": str(n.data["report"])}
    return details
