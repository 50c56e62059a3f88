"""Shared bits of the control tests (a uniquely named module: conftest names collide across dirs)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APPS = Path(__file__).parent / "apps"
WEB_APP = APPS / "web.py"
PYTHON = sys.executable

# The ``run`` fixture: run(coro, timeout=60) -> the coroutine's result.
Runner = Callable[..., Any]


@dataclass
class Recorder:
    """Collects the supervisor's on_change and on_event calls."""

    changes: list[Any] = field(default_factory=list)
    events: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    _tick: asyncio.Event = field(default_factory=asyncio.Event)

    def on_change(self, status: Any) -> None:
        self.changes.append(status)
        self._poke()

    def on_event(self, env: str, kind: str, message: str, data: dict[str, Any]) -> None:
        self.events.append((env, kind, message, data))
        self._poke()

    def _poke(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def until(self, pred: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait (on callbacks, not a timer) until ``pred()`` is truthy; return its value."""
        self._tick = asyncio.Event()  # bound to the running loop
        async with asyncio.timeout(timeout):
            while not (value := pred()):
                await self._tick.wait()
            return value

    def event(self, kind: str, n: int = 0) -> tuple[str, str, str, dict[str, Any]] | None:
        """The ``n``-th event of ``kind`` (None when there is none yet)."""
        found = [e for e in self.events if e[1] == kind]
        return found[n] if len(found) > n else None

    def get(self, kind: str, n: int = 0) -> tuple[str, str, str, dict[str, Any]]:
        """Like ``event`` for an event that must have happened."""
        found = self.event(kind, n)
        assert found is not None, f"no {kind} event #{n} in {self.kinds()}"
        return found

    def kinds(self) -> list[str]:
        return [e[1] for e in self.events]
