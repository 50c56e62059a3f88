from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.diff import diff_config
from shipyard.primitives.spec.masking import (
    config_digest,
    deployment_config,
    from_snapshot,
    resolved_config,
    spec_snapshot,
)
from shipyard.primitives.spec.secrets import KEY_ENV, SecretStore, generate_master_key

SECRET = "hunter2-very-secret"
DOTENV_VALUE = "dotenv-credential-value"


def setup(write_spec: Callable[..., Path], tmp_path: Path, example_toml: str) -> SecretStore:
    write_spec(example_toml)
    (tmp_path / ".env.staging").write_text(f"FROM_FILE={DOTENV_VALUE}\nGREETING=hi\n")
    store = SecretStore(tmp_path / ".shipyard", clock=ManualClock(), environ={KEY_ENV: generate_master_key()})
    store.set("staging", {"DB_PASSWORD": SECRET, "GREETING": SECRET})
    return store


def test_config_show_masks_secrets(write_spec: Callable[..., Path], tmp_path: Path, example_toml: str) -> None:
    store = setup(write_spec, tmp_path, example_toml)
    shown = resolved_config(load_spec(), "staging", store)
    text = json.dumps(shown)
    assert SECRET not in text
    assert shown["variables"] == {
        "DB_PASSWORD": {"value": "***", "source": "secret"},
        "FROM_FILE": {"value": DOTENV_VALUE, "source": ".env.staging"},
        "GREETING": {"value": "***", "source": "secret"},  # a secret overrides the config value
    }
    assert shown["secrets"] == {"names": ["DB_PASSWORD", "GREETING"], "version": 1}
    assert shown["settings"]["replicas"] == 3
    assert shown["settings"]["strategy"] == "blue-green"
    assert shown["url"] == "http://127.0.0.1:8200"
    assert shown["app"]["health"]["path"] == "/health"


def test_config_show_needs_no_master_key(write_spec: Callable[..., Path], tmp_path: Path,
                                         example_toml: str) -> None:
    setup(write_spec, tmp_path, example_toml)
    no_key = SecretStore(tmp_path / ".shipyard", environ={})
    assert resolved_config(load_spec(), "staging", no_key)["secrets"]["names"] == ["DB_PASSWORD", "GREETING"]


def test_snapshot_and_deployment_record_hold_no_values(write_spec: Callable[..., Path], tmp_path: Path,
                                                       example_toml: str) -> None:
    store = setup(write_spec, tmp_path, example_toml)
    spec = load_spec()
    snap = spec_snapshot(spec, "staging")
    assert json.loads(json.dumps(snap)) == snap  # JSON-able
    assert snap["environment"]["env"] == {"GREETING": "hello"}
    record = deployment_config(spec, "staging", store)
    text = json.dumps(record)
    assert SECRET not in text and DOTENV_VALUE not in text
    assert record["secrets"] == {"names": ["DB_PASSWORD", "GREETING"], "version": 1}
    assert record["dotenv"]["names"] == ["FROM_FILE", "GREETING"]
    # Changing a secret changes the digest; reloading the same spec does not.
    assert deployment_config(load_spec(), "staging", store)["digest"] == record["digest"]
    store.set("staging", {"DB_PASSWORD": "new"})
    assert deployment_config(spec, "staging", store)["digest"] != record["digest"]


def test_digest_is_stable_and_order_free() -> None:
    assert config_digest({"a": 1, "b": {"c": [1, 2]}}) == config_digest({"b": {"c": [1, 2]}, "a": 1})
    assert config_digest({"a": 1}) != config_digest({"a": 2})
    assert config_digest({}).startswith("sha256:")


def test_diff_of_snapshots(write_spec: Callable[..., Path], example_toml: str) -> None:
    write_spec(example_toml)
    old = spec_snapshot(load_spec(), "staging")
    write_spec(example_toml.replace("replicas = 3", "replicas = 4").replace('GREETING = "hello"', 'OTHER = "x"'))
    new = spec_snapshot(load_spec(), "staging")
    assert diff_config(old, new) == ["environment.env.GREETING", "environment.env.OTHER", "environment.replicas"]
    assert diff_config(new, new) == []


def test_diff_config() -> None:
    old = {"a": 1, "t": {"x": 1, "y": [1, 2]}, "gone": True, "e": {}}
    new = {"a": 1, "t": {"x": 2, "y": [1, 2, 3]}, "added": None, "e": {}}
    assert diff_config(old, new) == ["added", "gone", "t.x", "t.y"]


def test_snapshot_round_trip(write_spec: Callable[..., Path], minimal_app: str) -> None:
    write_spec(minimal_app + '''
[environments.staging]
port = 8200
strategy = "canary"
verify = true
drain_timeout = "1m"
canary = { steps = [5, 100], step_duration = "30s" }
[environments.staging.env]
A = "1"
''')
    spec = load_spec()
    snap = json.loads(json.dumps(spec_snapshot(spec, "staging")))
    app, env = from_snapshot(snap)
    assert app == spec.app
    assert env == spec.env("staging")
