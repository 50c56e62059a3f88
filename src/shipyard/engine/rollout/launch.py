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
from shipyard.primitives.spec.models import EnvSpec, Spec


@dataclass(frozen=True)
class Limits:
    """What one instance may use (``[environments.X.resources]``, enforced by control/cgroups.py):
    memory in bytes, CPU in cores (0.5 = half a core)."""

    memory: int | None = None
    cpu: float | None = None

    def __bool__(self) -> bool:
        return self.memory is not None or self.cpu is not None

    def to_json(self) -> dict[str, Any]:
        return {"memory": self.memory, "cpu": self.cpu}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Limits:
        d = d or {}
        mem, cpu = d.get("memory"), d.get("cpu")
        return cls(memory=int(mem) if mem is not None else None, cpu=float(cpu) if cpu is not None else None)


@dataclass(frozen=True)
class Launch:
    run: str
    health: Probe
    ready: Probe | None
    stop_signal: str = "SIGTERM"
    stop_grace: float = 30.0
    env: dict[str, str] = field(default_factory=dict)  # from the spec's env tables only
    limits: Limits = Limits()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Launch:
        ready = d.get("ready")
        return cls(run=str(d["run"]), health=Probe.from_json(d["health"]),
                   ready=Probe.from_json(ready) if ready else None,
                   stop_signal=str(d.get("stop_signal", "SIGTERM")), stop_grace=float(d.get("stop_grace", 30.0)),
                   env={str(k): str(v) for k, v in (d.get("env") or {}).items()},
                   limits=Limits.from_json(d.get("limits")))

    @classmethod
    def from_spec(cls, spec: Spec, env_name: str) -> Launch:
        app = spec.app
        env = spec.env(env_name)
        return cls(run=app.run, health=Probe.of(app.health), ready=Probe.of(app.ready) if app.ready else None,
                   stop_signal=app.stop.signal, stop_grace=float(app.stop.grace), env=dict(env.env),
                   limits=limits_of(env, "web"))


def limits_of(env: EnvSpec, process: str) -> Limits:
    res = env.resources.get(process)
    return Limits(memory=res.memory, cpu=res.cpu) if res is not None else Limits()
