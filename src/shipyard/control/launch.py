"""How to run one release's instances in one environment.

A ``Launch`` is recorded with each deployment (without secret values) so that an instance can be
restarted, re-adopted after a control-plane restart, or a release redeployed by a rollback with the
configuration it was deployed with. Secrets and the ``.env.<env>`` file are read when a process starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Probe:
    path: str
    interval: float = 10.0
    timeout: float = 1.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Launch:
    run: str
    health: Probe
    ready: Probe | None
    stop_signal: str = "SIGTERM"
    stop_grace: float = 30.0
    env: dict[str, str] = field(default_factory=dict)  # from the spec's env tables only

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Launch:
        ready = d.get("ready")
        return cls(run=d["run"], health=Probe(**d["health"]), ready=Probe(**ready) if ready else None,
                   stop_signal=d.get("stop_signal", "SIGTERM"), stop_grace=float(d.get("stop_grace", 30.0)),
                   env=dict(d.get("env", {})))

    @classmethod
    def from_spec(cls, spec: Any, env_name: str) -> Launch:
        app = spec.app
        env = spec.env(env_name)

        def probe(p: Any) -> Probe:
            return Probe(path=p.path, interval=float(p.interval), timeout=float(p.timeout),
                         retries=int(p.retries), start_period=float(p.start_period))

        return cls(run=app.run, health=probe(app.health), ready=probe(app.ready) if app.ready else None,
                   stop_signal=app.stop.signal, stop_grace=float(app.stop.grace), env=dict(env.env))
