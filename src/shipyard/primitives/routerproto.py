"""The router protocol: the routing table both sides share, and the client of the control socket.

Routing table — ``RoutingTable`` (frozen) is what the control plane builds and the router applies. On the
socket it travels as JSON, exactly this shape (``to_wire()`` writes it, ``parse(raw)`` validates it and
raises ``TableError`` naming the key path, e.g. ``table.pools[0].instances[1].port: expected 1..65535``):

    {"env", "port", "bind"?, "pools": [{"release", "role"?, "instances": [{"id", "host"?, "port", "ready"?}]}],
     "weights": {release: percent}, "sticky": null | {"cookie": name} | {"header": name}, "settings": {...}}

``settings`` is ``RouterEnvSpec.table_settings(env)`` (shipyard.primitives.spec.router); meanings in
docs/router.md.

Control socket — ``RouterClient(path).call("set_table", table={...}, timeout=5)`` returns the reply's
fields (without ``ok``) or raises ``RouterError`` with the router's message (``port 8200 is in use``);
``RouterUnavailable`` when nothing answers on the socket. ``AsyncRouterClient`` is the same for asyncio.
Each call uses its own connection, so long calls (``drain``) never hold up others. Ops and fields are
in docs/architecture.md and docs/router.md.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.spec.router import RouterEnvSpec, StickySpec

# -- routing table -----------------------------------------------------------------------------------

Role = Literal["stable", "canary", "preview"]
ROLES: tuple[Role, ...] = ("stable", "canary", "preview")
DEFAULT_BIND = "0.0.0.0"
_T = TypeVar("_T")
_STICKY_SHAPE = 'table.sticky: expected null, {"cookie": name} or {"header": name}'


class TableError(BadInput, ValueError):
    """A routing table (or control message) that cannot be applied; the message names the key path."""


@dataclass(frozen=True, slots=True)
class RoutedInstance:
    """One instance a pool sends requests to. ``ready = False`` keeps it in the table without traffic."""

    id: str
    port: int
    host: str = "127.0.0.1"
    ready: bool = True


@dataclass(frozen=True, slots=True)
class ReleasePool:
    release: str
    role: Role = "stable"
    instances: tuple[RoutedInstance, ...] = ()


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """One environment's routing: its listener, pools per release, weights (percent by release; empty →
    the stable pools share equally), stickiness and router settings. Checked when built: a table that
    exists can be applied."""

    env: str
    port: int
    pools: tuple[ReleasePool, ...] = ()
    weights: Mapping[str, float] = field(default_factory=dict)
    sticky: StickySpec | None = None
    settings: RouterEnvSpec = field(default_factory=RouterEnvSpec)
    bind: str = DEFAULT_BIND

    def __post_init__(self) -> None:
        _check_port(self.port, "table.port")
        if self.settings.bind is not None:  # [environments.X.router] bind: the control plane sets only settings
            object.__setattr__(self, "bind", self.settings.bind)
        releases: set[str] = set()
        for i, pool in enumerate(self.pools):
            where = f"table.pools[{i}]"
            if pool.release in releases:
                raise TableError(f"{where}.release: release '{pool.release}' has two pools")
            releases.add(pool.release)
            if pool.role not in ROLES:
                raise TableError(f"{where}.role: expected one of {', '.join(ROLES)}, got {pool.role!r}")
            ids: set[str] = set()
            for j, inst in enumerate(pool.instances):
                if inst.id in ids:
                    raise TableError(f"{where}.instances[{j}].id: duplicate instance id '{inst.id}'")
                ids.add(inst.id)
                _check_port(inst.port, f"{where}.instances[{j}].port")
        object.__setattr__(self, "weights", parse_weights(self.weights, self.releases(), "table.weights"))

    def releases(self) -> list[str]:
        return [p.release for p in self.pools]

    def effective_weights(self) -> dict[str, float]:
        if self.weights:
            return dict(self.weights)
        stable = [p.release for p in self.pools if p.role == "stable"]
        return {r: 100.0 / len(stable) for r in stable}

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for ``set_table`` (security headers resolved for this environment)."""
        return {
            "env": self.env,
            "port": self.port,
            "bind": self.bind,
            "pools": [{"release": p.release, "role": p.role,
                       "instances": [{"id": i.id, "host": i.host, "port": i.port, "ready": i.ready}
                                     for i in p.instances]} for p in self.pools],
            "weights": dict(self.weights),
            "sticky": None if self.sticky is None else self.sticky.model_dump(exclude_none=True),
            "settings": self.settings.table_settings(self.env),
        }


def _check_port(port: int, where: str) -> None:
    if not 0 < port < 65536:
        raise TableError(f"{where}: expected 1..65535, got {port}")


def _req(obj: Mapping[str, object], key: str, kind: type[_T], where: str) -> _T:
    if key not in obj:
        raise TableError(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TableError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise TableError(f"{where}: expected an object")
    return value


def parse_weights(weights: object, releases: list[str] | None, where: str = "weights") -> dict[str, float]:
    """``{release: percent}`` checked (0..100, and naming a pool when ``releases`` is given)."""
    if not isinstance(weights, Mapping):
        raise TableError(f"{where}: expected an object of release → percent")
    out: dict[str, float] = {}
    for rel, pct in weights.items():
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise TableError(f"{where}.{rel}: expected a percent between 0 and 100, got {pct!r}")
        if releases is not None and rel not in releases:
            raise TableError(f"{where}.{rel}: no pool for release '{rel}' (pools: {', '.join(releases) or 'none'})")
        out[str(rel)] = float(pct)
    return out


def _parse_instance(raw: object, where: str) -> RoutedInstance:
    obj = _object(raw, where)
    iid = obj.get("id")
    if iid is None:
        raise TableError(f"{where}: missing 'id'")
    if isinstance(iid, bool) or not isinstance(iid, str | int):
        raise TableError(f"{where}.id: expected str or int, got {iid!r}")
    port = _req(obj, "port", int, where)
    host = obj.get("host", "127.0.0.1")
    return RoutedInstance(str(iid), port, str(host), bool(obj.get("ready", True)))


def _parse_pool(raw: object, where: str) -> ReleasePool:
    obj = _object(raw, where)
    release = _req(obj, "release", str, where)
    role = obj.get("role", "stable")
    if role not in ROLES:
        raise TableError(f"{where}.role: expected one of {', '.join(ROLES)}, got {role!r}")
    instances = obj.get("instances") or []
    if not isinstance(instances, list):
        raise TableError(f"{where}.instances: expected a list")
    return ReleasePool(release, role,
                       tuple(_parse_instance(x, f"{where}.instances[{j}]") for j, x in enumerate(instances)))


def _parse_sticky(raw: object) -> StickySpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1:
        raise TableError(_STICKY_SHAPE)
    (key, value), = raw.items()
    if key not in ("cookie", "header") or not isinstance(value, str):
        raise TableError(_STICKY_SHAPE)
    return StickySpec(cookie=value) if key == "cookie" else StickySpec(header=value)


def parse(raw: object) -> RoutingTable:
    """A routing table from its JSON object; ``TableError`` with the key path when it is not one."""
    obj = _object(raw, "table")
    env = _req(obj, "env", str, "table")
    port = _req(obj, "port", int, "table")
    pools = obj.get("pools") or []
    if not isinstance(pools, list):
        raise TableError("table.pools: expected a list")
    bind = obj.get("bind") or DEFAULT_BIND
    if not isinstance(bind, str):
        raise TableError(f"table.bind: expected an address, got {bind!r}")
    try:
        settings = RouterEnvSpec.model_validate(obj.get("settings") or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise TableError(f"table.settings: {problems}") from exc
    return RoutingTable(
        env=env,
        port=port,
        pools=tuple(_parse_pool(p, f"table.pools[{i}]") for i, p in enumerate(pools)),
        weights=parse_weights(obj.get("weights") or {}, None, "table.weights"),
        sticky=_parse_sticky(obj.get("sticky")),
        settings=settings,
        bind=bind,
    )


# -- control socket ----------------------------------------------------------------------------------

DEFAULT_TIMEOUT = 10.0
_MAX_REPLY = 64 * 1024 * 1024


class RouterError(ShipyardError):
    """The router refused or failed an operation; the message is the router's."""


class RouterUnavailable(RouterError):
    """Nothing answers on the router's control socket."""


def _encode(op: str, fields: dict[str, Any]) -> bytes:
    return json.dumps({"op": op, **fields}, separators=(",", ":")).encode() + b"\n"


def _decode(op: str, line: bytes) -> dict[str, Any]:
    if not line:
        raise RouterUnavailable(f"router closed the control connection during '{op}'")
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise RouterError(f"router sent an invalid reply to '{op}': {exc}") from exc
    if not isinstance(reply, dict):
        raise RouterError(f"router sent an invalid reply to '{op}'")
    if not reply.get("ok"):
        raise RouterError(str(reply.get("error") or f"router refused '{op}'"))
    reply.pop("ok", None)
    return reply


class RouterClient:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def call(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, fields: dict[str, Any] | None = None,
             **kw: Any) -> dict[str, Any]:
        # `fields` carries message fields whose names clash with keyword arguments (drain's `timeout`).
        fields = {**(fields or {}), **kw}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            try:
                s.connect(str(self.path))
            except OSError as exc:
                raise RouterUnavailable(f"router is not running (no answer on {self.path})") from exc
            try:
                s.sendall(_encode(op, fields))
                chunks: list[bytes] = []
                size = 0
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                    size += len(data)
                    if data.endswith(b"\n") or size > _MAX_REPLY:
                        break
            except TimeoutError as exc:
                raise RouterError(f"router did not answer '{op}' within {timeout:g}s") from exc
            except OSError as exc:
                raise RouterUnavailable(f"router connection failed during '{op}': {exc}") from exc
        finally:
            s.close()
        return _decode(op, b"".join(chunks))

    def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        return self.call("ping", timeout=timeout)


class AsyncRouterClient:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def call(self, op: str, *, timeout: float = DEFAULT_TIMEOUT, fields: dict[str, Any] | None = None,
                   **kw: Any) -> dict[str, Any]:
        # `fields` carries message fields whose names clash with keyword arguments (drain's `timeout`).
        fields = {**(fields or {}), **kw}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(self.path), limit=_MAX_REPLY), timeout
            )
        except (TimeoutError, OSError) as exc:
            raise RouterUnavailable(f"router is not running (no answer on {self.path})") from exc
        try:
            writer.write(_encode(op, fields))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
        except TimeoutError as exc:
            raise RouterError(f"router did not answer '{op}' within {timeout:g}s") from exc
        except (OSError, ValueError) as exc:
            raise RouterUnavailable(f"router connection failed during '{op}': {exc}") from exc
        finally:
            writer.close()
        return _decode(op, line)

    async def ping(self, timeout: float = 2.0) -> dict[str, Any]:
        return await self.call("ping", timeout=timeout)
