"""How to run one release's instances in one environment.

A ``Launch`` is part of the plan and recorded with each deployment (without secret values) so that an
instance can be restarted, re-adopted after a control-plane restart, or a release redeployed by a
rollback with the configuration it was deployed with. Secrets and the ``.env.<env>`` file are read
when a process starts, never stored here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.primitives.probe import Probe
from shipyard.primitives.spec.models import Spec


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
        return cls(run=str(d["run"]), health=Probe.from_json(d["health"]),
                   ready=Probe.from_json(ready) if ready else None,
                   stop_signal=str(d.get("stop_signal", "SIGTERM")), stop_grace=float(d.get("stop_grace", 30.0)),
                   env={str(k): str(v) for k, v in (d.get("env") or {}).items()})

    @classmethod
    def from_spec(cls, spec: Spec, env_name: str) -> Launch:
        app = spec.app
        env = spec.env(env_name)
        return cls(run=app.run, health=Probe.of(app.health), ready=Probe.of(app.ready) if app.ready else None,
                   stop_signal=app.stop.signal, stop_grace=float(app.stop.grace), env=dict(env.env))
