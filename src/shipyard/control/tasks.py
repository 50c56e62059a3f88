"""The one way a background task of the control plane may fail without taking it down.

Like kopf's ``create_guarded_task``: the task's exception is logged with its name and swallowed, a
cancellation passes through. Every long-lived task (collectors, watches, scale-downs, table pushes,
deployments, the scheduler) is started through ``guarded``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("shipyard.control")


def guarded(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    async def run() -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s crashed", name)

    return asyncio.get_running_loop().create_task(run(), name=name)
