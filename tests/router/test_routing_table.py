"""The routing table type both sides share (shipyard.primitives.routerproto): wire format, validation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shipyard.primitives.routerproto import (
    ReleasePool,
    RoutedInstance,
    RoutingTable,
    TableError,
    parse,
)
from shipyard.primitives.spec.router import RouterEnvSpec, StickySpec


def old_control_plane_table() -> dict[str, Any]:
    """What control/runtime.py EnvRuntime.table() sends today (an untyped dict)."""
    return {
        "env": "prod",
        "port": 8200,
        "pools": [
            {"release": "r1", "role": "stable", "instances": [{"id": "web-1", "host": "127.0.0.1", "port": 9101,
                                                               "ready": True}]},
            {"release": "r2", "role": "canary", "instances": [{"id": "web-2", "host": "127.0.0.1", "port": 9102,
                                                               "ready": False}]},
        ],
        "weights": {"r1": 90, "r2": 10},
        "settings": RouterEnvSpec.model_validate({"header_timeout": "5s"}).table_settings("prod"),
        "sticky": {"cookie": "shipyard_release"},
    }


def test_old_control_plane_table_parses_and_round_trips() -> None:
    t = parse(old_control_plane_table())
    assert t == RoutingTable(
        env="prod", port=8200,
        pools=(ReleasePool("r1", "stable", (RoutedInstance("web-1", 9101),)),
               ReleasePool("r2", "canary", (RoutedInstance("web-2", 9102, ready=False),))),
        weights={"r1": 90.0, "r2": 10.0}, sticky=StickySpec(cookie="shipyard_release"),
        settings=t.settings,
    )
    assert t.settings.header_timeout == 5.0 and t.bind == "0.0.0.0"
    wire = t.to_wire()
    assert parse(wire) == t
    assert parse(wire).to_wire() == wire
    assert set(wire) == {"env", "port", "bind", "pools", "weights", "sticky", "settings"}


def test_constructed_table_is_what_the_control_plane_sends() -> None:
    spec = RouterEnvSpec.model_validate({"sticky": {"header": "X-User"}, "max_body_size": 1000})
    t = RoutingTable(env="staging", port=8300, pools=(ReleasePool("r7", instances=(RoutedInstance("w", 9000),)),),
                     sticky=spec.sticky, settings=spec)
    wire = t.to_wire()
    assert wire["settings"] == spec.table_settings("staging") and wire["sticky"] == spec.table_sticky()
    assert wire["pools"] == [{"release": "r7", "role": "stable",
                              "instances": [{"id": "w", "host": "127.0.0.1", "port": 9000, "ready": True}]}]
    back = parse(wire)
    assert back.settings.max_body_size == 1000 and back.sticky == StickySpec(header="X-User")


def test_settings_on_the_wire_are_only_what_differs_from_the_defaults() -> None:
    # An older router (which rejects unknown settings) keeps working with a newer control plane.
    assert RouterEnvSpec().table_settings("dev") == {"security_headers": {}}
    spec = RouterEnvSpec.model_validate({"body_deadline": "90s", "access_log": {"sample": "10%"}})
    wire = spec.table_settings("prod")
    assert wire["body_deadline"] == 90.0 and wire["access_log"] == {"sample": 0.1}
    assert "body_timeout" not in wire and "response_timeout" not in wire
    back = parse({"env": "prod", "port": 1, "settings": wire}).settings
    assert back.body_deadline == 90.0 and back.body_timeout == spec.body_timeout
    assert back.resolved_security_headers("prod") == spec.resolved_security_headers("prod")


def test_empty_weights_share_among_stable_pools() -> None:
    t = parse({"env": "e", "port": 1, "pools": [{"release": "a"}, {"release": "b"}, {"release": "c", "role": "canary"}]})
    assert t.weights == {} and t.effective_weights() == {"a": 50.0, "b": 50.0}
    assert parse({"env": "e", "port": 1}).effective_weights() == {}


def _with(path: str, value: object) -> dict[str, Any]:
    raw = old_control_plane_table()
    node: Any = raw
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        node = node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = copy.deepcopy(value)
    return raw


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "table: expected an object"),
        (_with("env", KeyError), "table: missing 'env'"),
        (_with("port", "8200"), "table.port: expected int, got '8200'"),
        (_with("port", True), "table.port: expected int, got True"),
        (_with("port", 70000), "table.port: expected 1..65535, got 70000"),
        (_with("pools", "r1"), "table.pools: expected a list"),
        (_with("pools.0", "x"), r"table.pools\[0\]: expected an object"),
        (_with("pools.1.release", "r1"), r"table.pools\[1\].release: release 'r1' has two pools"),
        (_with("pools.0.role", "blue"), r"table.pools\[0\].role: expected one of stable, canary, preview"),
        (_with("pools.0.instances.0.id", 1.5), r"table.pools\[0\].instances\[0\].id: expected str or int"),
        (_with("pools.0.instances.0.port", 0), r"table.pools\[0\].instances\[0\].port: expected 1..65535, got 0"),
        (_with("pools.0.instances", [{"id": "a", "port": 1}, {"id": "a", "port": 2}]),
         r"table.pools\[0\].instances\[1\].id: duplicate instance id 'a'"),
        (_with("weights", {"r1": 150}), "table.weights.r1: expected a percent between 0 and 100"),
        (_with("weights", {"r9": 10}), r"table.weights.r9: no pool for release 'r9' \(pools: r1, r2\)"),
        (_with("sticky", {"cookie": "a", "header": "b"}), "table.sticky: expected null"),
        (_with("sticky", {"session": "a"}), "table.sticky: expected null"),
        (_with("settings", {"header_timeout": "soon"}), "table.settings: header_timeout"),
        (_with("settings", {"nope": 1}), "table.settings: nope: Extra inputs are not permitted"),
        (_with("bind", 4), "table.bind: expected an address"),
    ],
)
def test_bad_tables_name_the_key_path(raw: object, message: str) -> None:
    with pytest.raises(TableError, match=message):
        parse(raw)


def test_constructor_checks_what_parse_checks() -> None:
    with pytest.raises(TableError, match="table.port: expected 1..65535"):
        RoutingTable(env="e", port=0)
    with pytest.raises(TableError, match=r"table.weights.r2: no pool for release 'r2'"):
        RoutingTable(env="e", port=1, pools=(ReleasePool("r1"),), weights={"r2": 100})
    with pytest.raises(TableError, match=r"table.pools\[1\].release: release 'r1' has two pools"):
        RoutingTable(env="e", port=1, pools=(ReleasePool("r1"), ReleasePool("r1")))
