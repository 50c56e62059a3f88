"""The environments' event log: one line in control.log and one row in the state database per event."""

from __future__ import annotations

import logging
from typing import Any

from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")


class EventLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def add(self, env: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        log.info("%s: %s", env, message)
        self.store.add_event(env, kind, message, data=data, at=self.clock.time())
