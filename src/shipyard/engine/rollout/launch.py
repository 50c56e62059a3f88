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
from shipyard.primitives.spec.processes import WEB


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


# A process type that is not routed is healthy while its process is alive, or while its ``check``
# command exits 0: probed this often, each run given this long.
CHECK_PROBE = Probe(path="(check)", interval=10.0, timeout=10.0, retries=3, start_period=60.0)


@dataclass(frozen=True)
class ProcessLaunch:
    """How one process type other than ``web`` runs in an environment (``[processes]`` +
    ``[environments.X.processes.T]`` + ``[environments.X.resources]``): never routed."""

    run: str
    replicas: int = 1
    stop_signal: str = "SIGTERM"
    stop_grace: float = 30.0
    check: str | None = None
    limits: Limits = Limits()
    surge: bool = True

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProcessLaunch:
        return cls(run=str(d["run"]), replicas=int(d.get("replicas", 1)),
                   stop_signal=str(d.get("stop_signal", "SIGTERM")), stop_grace=float(d.get("stop_grace", 30.0)),
                   check=d.get("check"), limits=Limits.from_json(d.get("limits")), surge=bool(d.get("surge", True)))


@dataclass(frozen=True)
class Launch:
    run: str
    health: Probe
    ready: Probe | None
    stop_signal: str = "SIGTERM"
    stop_grace: float = 30.0
    env: dict[str, str] = field(default_factory=dict)  # from the spec's env tables only
    limits: Limits = Limits()
    processes: dict[str, ProcessLaunch] = field(default_factory=dict)  # the other process types

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Launch:
        ready = d.get("ready")
        return cls(run=str(d["run"]), health=Probe.from_json(d["health"]),
                   ready=Probe.from_json(ready) if ready else None,
                   stop_signal=str(d.get("stop_signal", "SIGTERM")), stop_grace=float(d.get("stop_grace", 30.0)),
                   env={str(k): str(v) for k, v in (d.get("env") or {}).items()},
                   limits=Limits.from_json(d.get("limits")),
                   processes={str(k): ProcessLaunch.from_json(v) for k, v in (d.get("processes") or {}).items()})

    @classmethod
    def from_spec(cls, spec: Spec, env_name: str) -> Launch:
        app = spec.app
        env = spec.env(env_name)
        web = spec.processes.get(WEB)
        web_stop = (env.processes[WEB].stop if WEB in env.processes else None) or app.stop
        others = {}
        for name, proc in sorted(spec.processes.items()):
            if name == WEB:
                continue
            over = env.processes.get(name)
            stop = (over.stop if over else None) or app.stop
            others[name] = ProcessLaunch(
                run=proc.run, replicas=over.replicas if over and over.replicas is not None else 1,
                stop_signal=stop.signal, stop_grace=float(stop.grace), check=(over.check if over else None) or proc.check,
                limits=limits_of(env, name), surge=over.surge if over else True)
        return cls(run=web.run if web else str(app.run), health=Probe.of(app.health),
                   ready=Probe.of(app.ready) if app.ready else None, stop_signal=web_stop.signal,
                   stop_grace=float(web_stop.grace), env=dict(env.env), limits=limits_of(env, WEB), processes=others)

    def of(self, process: str) -> ProcessLaunch:
        """A process type's settings (``web`` included, from the top-level fields)."""
        if process == WEB:
            return ProcessLaunch(run=self.run, stop_signal=self.stop_signal, stop_grace=self.stop_grace,
                                 limits=self.limits)
        return self.processes[process]

def web_replicas(env: EnvSpec) -> int:
    """``[environments.X.processes.web] replicas`` or, as ever, ``replicas``."""
    over = env.processes.get(WEB)
    return over.replicas if over is not None and over.replicas is not None else env.replicas


def limits_of(env: EnvSpec, process: str) -> Limits:
    res = env.resources.get(process)
    return Limits(memory=res.memory, cpu=res.cpu) if res is not None else Limits()
