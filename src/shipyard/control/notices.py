"""Notices meant for people (maintenance 24 h ahead, at its start and end; incidents opened and updated).

Each notice is recorded as a ``notice`` event and handed to every hook. The receivers (e-mail, chat,
webhooks) connect here: ``Notices.hooks.append(deliver)`` in the daemon; until they do, a notice is an
event that ``shipyard events`` and the API show.
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
    kind: str  # maintenance_ahead | maintenance_start | maintenance_end | incident_open | incident_update
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
