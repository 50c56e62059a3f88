"""The one probe type: how an instance is checked for liveness or readiness.

The spec's ``ProbeSpec`` is the config boundary (pydantic); everything past it — the launch recorded
with a deployment, the supervisor's health checker, adoption — holds this frozen value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class _ProbeLike(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def interval(self) -> float: ...
    @property
    def timeout(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def start_period(self) -> float: ...


@dataclass(frozen=True)
class Probe:
    """An HTTP GET of ``path``; defaults like Kubernetes' probes."""

    path: str = "/"
    interval: float = 10.0
    timeout: float = 1.0
    retries: int = 3
    start_period: float = 0.0

    @classmethod
    def of(cls, p: _ProbeLike) -> Probe:
        return cls(path=p.path, interval=float(p.interval), timeout=float(p.timeout), retries=int(p.retries),
                   start_period=float(p.start_period))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Probe:
        return cls(path=str(d["path"]), interval=float(d.get("interval", 10.0)),
                   timeout=float(d.get("timeout", 1.0)), retries=int(d.get("retries", 3)),
                   start_period=float(d.get("start_period", 0.0)))
