"""Starts and watches the status-page process (``python -m shipyard.statuspage``), like the router: its own
session, so a SIGKILLed control plane leaves it serving; ``run/statuspage.json`` says which process it
is, and a control plane that starts again adopts it (a changed ``listen`` restarts it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.control.paths import Paths
from shipyard.control.routerlink import router_environment
from shipyard.errors import ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec

log = logging.getLogger("shipyard.control")


def status_dir(paths: Paths) -> Path:
    return paths.state / "statuspage"


class StatusPageProcess:
    def __init__(self, paths: Paths, clock: Clock) -> None:
        self.paths = paths
        self.clock = clock
        self.info_path = paths.run / "statuspage.json"
        self.port: int | None = None

    def _info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) and process.is_alive(info["pid"], info["create_time"]) else None

    async def ensure(self, listen: str | None) -> int | None:
        """The process serving on ``listen`` (started when none is); None stops it (no [status_page])."""
        info = self._info()
        if info is not None and info.get("listen") == listen:
            self.port = int(info["port"])
            return self.port
        if info is not None:
            await self.stop()
        if listen is None:
            return None
        out = status_dir(self.paths)
        out.mkdir(parents=True, exist_ok=True)
        ready = self.paths.run / "statuspage.ready"
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        log_path = self.paths.state / "logs" / "statuspage.log"
        handle = process.spawn([sys.executable, "-m", "shipyard.statuspage", "--dir", str(out), "--listen", listen,
                                "--ready-file", str(ready)],
                               cwd=self.paths.state, env=router_environment(os.environ), log_path=log_path)
        deadline = self.clock.monotonic() + 10
        while not ready.exists():
            if self.clock.monotonic() > deadline or not process.is_alive(handle.pid, handle.create_time):
                raise ShipyardError(f"the status page did not start on {listen}; see {log_path}")
            await self.clock.sleep(0.05)
        self.port = int(json.loads(ready.read_text())["port"])
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": handle.pid, "create_time": handle.create_time, "port": self.port,
                                   "listen": listen}))
        os.replace(tmp, self.info_path)
        log.info("status page serving on %s (port %d)", listen, self.port)
        return self.port

    async def stop(self) -> None:
        info = self._info()
        if info is not None:
            await process.stop_process_group(info["pid"], info["create_time"], grace=5.0, clock=self.clock)
        with contextlib.suppress(FileNotFoundError):
            self.info_path.unlink()
        self.port = None

    async def keep_running(self, spec: Callable[[], Spec | None], interval: float = 2.0) -> None:
        """Started again when it dies; restarted on a new ``listen``; stopped when [status_page] goes."""
        while True:
            current = spec()
            if current is not None:
                listen = current.status_page.listen if current.status_page is not None else None
                try:
                    await self.ensure(listen)
                except ShipyardError as err:
                    log.warning("%s", err)
            await asyncio.sleep(interval)
