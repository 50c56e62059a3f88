"""The request mix: scenarios from the spec or a file, encoded once, picked by smooth weighted round-robin.

Picks are deterministic (nginx's smooth weighted round-robin) so a mix of 3/5/2/1 is exactly that
over every cycle of 11 requests and spread evenly within it, not clumped.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shipyard.errors import ConfigError
from shipyard.primitives.spec.verify import ScenarioSpec, VerifySpec

DEFAULT = ScenarioSpec()
_MAX_CYCLE = 10_000


@dataclass(frozen=True)
class PreparedScenario:
    """A scenario ready to send: the exact request bytes and the statuses that count as success."""

    label: str
    weight: float
    method: str
    payload: bytes
    expect: frozenset[int] | None  # None: 200–399

    def ok(self, status: int) -> bool:
        return status in self.expect if self.expect is not None else 200 <= status < 400


def load_scenarios(spec: VerifySpec, project_dir: Path | None = None) -> list[ScenarioSpec]:
    if spec.scenarios:
        return list(spec.scenarios)
    if not spec.scenarios_file:
        return [DEFAULT]
    path = Path(spec.scenarios_file)
    if not path.is_absolute() and project_dir is not None:
        path = project_dir / path
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"verify.scenarios_file: cannot read {path}: {exc.strerror}") from exc
    try:
        data = _parse(path, text)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("scenarios", data)
    try:
        found = TypeAdapter(list[ScenarioSpec]).validate_python(data)
    except ValidationError as exc:
        problems = [f"scenarios{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid scenarios", problems=problems) from exc
    if not found:
        raise ConfigError(f"{path}: no scenarios")
    return found


def _parse(path: Path, text: str) -> Any:
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}") from exc
    return tomllib.loads(text)


def _loc(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def prepare(scenarios: list[ScenarioSpec], host: str) -> list[PreparedScenario]:
    out = []
    for s in scenarios:
        body = (s.body or "").encode()
        lines = [f"{s.method} {s.path} HTTP/1.1", f"Host: {host}", "User-Agent: shipyard-verify"]
        lines += [f"{k}: {v}" for k, v in s.headers.items()]
        if body or s.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        out.append(PreparedScenario(s.label, s.weight, s.method, payload, frozenset(s.expect_status) or None))
    return out


def pick_cycle(weights: list[float]) -> list[int]:
    """One cycle of scenario indices in smooth weighted round-robin order."""
    if len(weights) == 1:
        return [0]
    if all(float(w).is_integer() for w in weights) and sum(weights) <= _MAX_CYCLE:
        length = int(sum(weights))
    else:
        length = _MAX_CYCLE
    total = sum(weights)
    current = [0.0] * len(weights)
    cycle = []
    for _ in range(length):
        for j, w in enumerate(weights):
            current[j] += w
        best = max(range(len(weights)), key=current.__getitem__)
        current[best] -= total
        cycle.append(best)
    return cycle
