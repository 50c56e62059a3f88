"""Where a project's state lives under ``.shipyard/`` (see docs/architecture.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shipyard.engine.releases import release_dir


@dataclass(frozen=True)
class Paths:
    project: Path

    @property
    def state(self) -> Path:
        return self.project / ".shipyard"

    @property
    def token(self) -> Path:
        return self.state / "token"

    @property
    def control(self) -> Path:
        return self.state / "control.json"

    @property
    def daemon_log(self) -> Path:
        return self.state / "logs" / "control.log"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def control_lock(self) -> Path:
        return self.run / "control.lock"

    @property
    def router_socket(self) -> Path:
        return self.run / "router.sock"

    @property
    def router_pid(self) -> Path:
        return self.run / "router.json"

    def router_socket_of(self, worker: int) -> Path:
        """Worker 0 keeps the historical names; workers 1.. (``[router] workers``) get numbered ones."""
        return self.router_socket if worker == 0 else self.run / f"router-{worker}.sock"

    def router_pid_of(self, worker: int) -> Path:
        return self.router_pid if worker == 0 else self.run / f"router-{worker}.json"

    @property
    def router_logs(self) -> Path:
        return self.state / "logs" / "router"

    def release_dir(self, release: str) -> Path:
        return release_dir(self.state, release)

    def instance_log(self, env: str, instance: str) -> Path:
        return self.state / "logs" / env / f"{instance}.log"

    def ensure(self) -> None:
        for d in (self.state, self.run, self.router_logs):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state, 0o700)
