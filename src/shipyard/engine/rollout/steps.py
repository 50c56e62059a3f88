"""Deployment steps: what a strategy plans and the executor performs.

A step is data. Strategies return lists of steps (pure); ``--plan`` renders them; the executor runs
them against a target. Steps that act on instances started earlier in the same deployment refer to
them by ``tag`` (the ids are only known at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal[
    "build",  # build the release from a git ref (done by the deployer before the strategy's steps)
    "start",  # start `count` instances of `release`, remembered under `tag`
    "wait_ready",  # wait until the instances under `tag` are ready (deploy_timeout)
    "route",  # set router weights (and commit current/previous release when `commit`)
    "unroute",  # take instances out of the routing table (rolling)
    "drain",  # wait until in-flight requests to `release` (or `ids`) are done
    "stop",  # stop instances (by `ids`, `tag` or `release`)
    "keep_warm",  # leave `release` running unrouted; stop it after `delay`
    "verify",  # load verification (go / no-go) against the environment
    "canary",  # one canary step (weight, bake, gate, analysis), judged live; failing it rolls back
]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    description: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.kind}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(kind=data["kind"], description=data["description"], params=dict(data.get("params", {})))
