"""Drives ``worker.py`` in its own process, one stdin/stdout line at a time."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from shipyard.primitives.store import ENV_VAR

WORKER = Path(__file__).with_name("worker.py")
WORKER_TIMEOUT_S = 90.0  # the machine is shared and busy: generous


class Worker:
    """``worker.py`` in its own process, stepped through stdin/stdout lines."""

    def __init__(self, action: str, url: str | None, state_dir: Path, release: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
        self._log = log
        self._stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), action, url or "-", str(state_dir), release],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def line(self) -> str:
        try:
            line = self._lines.get(timeout=WORKER_TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"worker silent for {WORKER_TIMEOUT_S}s; stderr: {self.stderr()}") from None
        if line is None:
            raise AssertionError(f"worker exited ({self.proc.wait()}); stderr: {self.stderr()}")
        return line

    def wait_ready(self) -> None:
        assert self.line() == "ready"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.line())
        return value

    def stderr(self) -> str:
        self._stderr.flush()
        return self._log.read_text()[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=WORKER_TIMEOUT_S)
        self._stderr.close()
