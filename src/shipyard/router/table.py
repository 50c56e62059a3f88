"""Routing tables as sent on the control socket, validated into frozen dataclasses.

    {"env", "port", "pools": [{"release", "role", "instances": [{"id", "host", "port", "ready"}]}],
     "weights": {release: percent}, "sticky": null | {"cookie": name} | {"header": name}, "settings": {...}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shipyard.primitives.spec.router import RouterEnvSpec

ROLES = ("stable", "canary", "preview")


class TableError(ValueError):
    """A table or control message that cannot be applied; the message goes back to the caller."""


@dataclass(frozen=True)
class InstanceSpec:
    id: str
    host: str
    port: int
    ready: bool = True


@dataclass(frozen=True)
class PoolSpec:
    release: str
    role: str
    instances: tuple[InstanceSpec, ...]


@dataclass(frozen=True)
class Table:
    env: str
    port: int
    pools: tuple[PoolSpec, ...]
    weights: dict[str, float]
    sticky_cookie: str | None
    sticky_header: str | None
    settings: RouterEnvSpec
    raw: dict[str, Any]

    def releases(self) -> list[str]:
        return [p.release for p in self.pools]


def _req(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise TableError(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise TableError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def parse_weights(weights: Any, releases: list[str] | None, where: str = "weights") -> dict[str, float]:
    if not isinstance(weights, dict):
        raise TableError(f"{where}: expected an object of release → percent")
    out: dict[str, float] = {}
    for rel, pct in weights.items():
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise TableError(f"{where}.{rel}: expected a percent between 0 and 100, got {pct!r}")
        if releases is not None and rel not in releases:
            raise TableError(f"{where}.{rel}: no pool for release '{rel}' (pools: {', '.join(releases) or 'none'})")
        out[str(rel)] = float(pct)
    return out


def parse_table(raw: Any) -> Table:
    if not isinstance(raw, dict):
        raise TableError("table: expected an object")
    env = _req(raw, "env", str, "table")
    port = _req(raw, "port", int, "table")
    if not 0 < port < 65536:
        raise TableError(f"table.port: expected 1..65535, got {port}")
    pools: list[PoolSpec] = []
    seen_rel: set[str] = set()
    for i, p in enumerate(raw.get("pools") or []):
        where = f"table.pools[{i}]"
        if not isinstance(p, dict):
            raise TableError(f"{where}: expected an object")
        rel = _req(p, "release", str, where)
        if rel in seen_rel:
            raise TableError(f"{where}.release: release '{rel}' has two pools")
        seen_rel.add(rel)
        role = p.get("role", "stable")
        if role not in ROLES:
            raise TableError(f"{where}.role: expected one of {', '.join(ROLES)}, got {role!r}")
        insts: list[InstanceSpec] = []
        ids: set[str] = set()
        for j, inst in enumerate(p.get("instances") or []):
            iw = f"{where}.instances[{j}]"
            if not isinstance(inst, dict):
                raise TableError(f"{iw}: expected an object")
            iid = str(_req(inst, "id", (str, int), iw))
            if iid in ids:
                raise TableError(f"{iw}.id: duplicate instance id '{iid}'")
            ids.add(iid)
            iport = _req(inst, "port", int, iw)
            if not 0 < iport < 65536:
                raise TableError(f"{iw}.port: expected 1..65535, got {iport}")
            insts.append(InstanceSpec(iid, str(inst.get("host", "127.0.0.1")), iport, bool(inst.get("ready", True))))
        pools.append(PoolSpec(rel, role, tuple(insts)))
    releases = [p.release for p in pools]
    weights = parse_weights(raw.get("weights") or {}, releases, "table.weights")
    if not weights:
        # No weights: stable pools share the traffic equally.
        stable = [p.release for p in pools if p.role == "stable"]
        weights = {r: 100.0 / len(stable) for r in stable}
    sticky = raw.get("sticky")
    cookie = header = None
    if sticky is not None:
        if not isinstance(sticky, dict) or len(sticky) != 1 or not isinstance(next(iter(sticky.values())), str):
            raise TableError('table.sticky: expected null, {"cookie": name} or {"header": name}')
        cookie, header = sticky.get("cookie"), sticky.get("header")
        if cookie is None and header is None:
            raise TableError('table.sticky: expected null, {"cookie": name} or {"header": name}')
    try:
        settings = RouterEnvSpec.model_validate(raw.get("settings") or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise TableError(f"table.settings: {problems}") from exc
    return Table(env, port, tuple(pools), weights, cookie, header, settings, raw)
