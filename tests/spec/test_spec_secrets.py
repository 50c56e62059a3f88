from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.errors import BadInput, ConfigError, IntegrityError, NotFound
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.secrets import KEY_ENV, SecretStore, generate_master_key

VALUE = "s3cr3t-Value-that-must-never-leak"


def store(tmp_path: Path, key: str | None = None) -> SecretStore:
    environ = {KEY_ENV: key} if key is not None else {}
    return SecretStore(tmp_path / ".shipyard", clock=ManualClock(), environ=environ)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_and_versions(tmp_path: Path) -> None:
    s = store(tmp_path)
    assert s.version("staging") == 0 and s.names("staging") == [] and s.values("staging") == {}
    assert s.set("staging", {"DB_PASSWORD": VALUE, "API_KEY": "k1"}) == 1
    assert s.values("staging") == {"API_KEY": "k1", "DB_PASSWORD": VALUE}
    assert s.names("staging") == ["API_KEY", "DB_PASSWORD"]
    assert s.set("staging", {"API_KEY": "k2"}) == 2
    assert s.set("staging", {"API_KEY": "k2"}) == 2  # same value: nothing changed, no new version
    assert s.unset("staging", ["DB_PASSWORD"]) == 3
    assert s.values("staging") == {"API_KEY": "k2"}
    assert s.changed_since("staging", 1) == ["API_KEY", "DB_PASSWORD"]
    assert s.changed_since("staging", 2) == ["DB_PASSWORD"]
    assert s.changed_since("staging", 3) == []
    assert [i.name for i in s.info("staging")] == ["API_KEY"] and s.info("staging")[0].version == 2
    # Environments are independent, and a fresh store object reads the same files.
    assert s.version("prod") == 0
    assert store(tmp_path).values("staging") == {"API_KEY": "k2"}


def test_values_never_in_clear_on_disk(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"DB_PASSWORD": VALUE, "OTHER": VALUE})
    s.set("staging", {"THIRD": "x" + VALUE})
    s.unset("staging", ["OTHER"])
    files = [p for p in (tmp_path / ".shipyard").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert VALUE.encode() not in data
        assert base64.b64encode(VALUE.encode()) not in data
    doc = json.loads((tmp_path / ".shipyard/secrets/staging.json").read_text())
    assert doc["version"] == 3
    nonces = [v["nonce"] for v in doc["values"].values()]
    assert len(set(nonces)) == len(nonces)  # a fresh nonce per value
    assert all(len(base64.b64decode(n)) == 12 for n in nonces)


def test_key_file_generated_private(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    key_file = tmp_path / ".shipyard/master.key"
    assert mode(key_file) == 0o600
    assert mode(tmp_path / ".shipyard") == 0o700
    assert mode(tmp_path / ".shipyard/secrets") == 0o700
    assert mode(tmp_path / ".shipyard/secrets/staging.json") == 0o600
    assert len(base64.b64decode(key_file.read_text())) == 32
    before = key_file.read_bytes()
    s.set("prod", {"A": "2"})
    assert key_file.read_bytes() == before  # generated once


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    os.chmod(tmp_path / ".shipyard/master.key", 0o644)
    with pytest.raises(ConfigError, match="readable by other users.*chmod 600"):
        s.values("staging")


def test_master_key_from_environment(tmp_path: Path) -> None:
    key = generate_master_key()
    s = store(tmp_path, key)
    s.set("staging", {"A": "1"})
    assert not (tmp_path / ".shipyard/master.key").exists()
    assert store(tmp_path, key).values("staging") == {"A": "1"}
    # URL-safe alphabet without padding names the same key.
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(key)).decode().rstrip("=")
    assert store(tmp_path, urlsafe).values("staging") == {"A": "1"}


@pytest.mark.parametrize("bad", ["not base64!!", base64.b64encode(b"short").decode()])
def test_malformed_master_key(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not a valid master key"):
        store(tmp_path, bad).set("staging", {"A": "1"})


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    store(tmp_path, generate_master_key()).set("staging", {"A": "1"})
    with pytest.raises(ConfigError) as info:
        store(tmp_path, generate_master_key()).values("staging")
    assert str(info.value).startswith("secrets for staging cannot be decrypted with this master key")
    assert "Traceback" not in str(info.value)


def test_missing_key_with_existing_secrets_is_not_regenerated(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    (tmp_path / ".shipyard/master.key").unlink()
    with pytest.raises(ConfigError, match="no master key"):
        s.values("staging")
    with pytest.raises(ConfigError, match="no master key"):
        s.set("prod", {"B": "2"})
    assert not (tmp_path / ".shipyard/master.key").exists()
    assert s.names("staging") == ["A"]  # names and versions need no key


def test_tampering_is_detected(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1", "B": "2"})
    path = tmp_path / ".shipyard/secrets/staging.json"
    doc = json.loads(path.read_text())
    # Moving a ciphertext to another name fails authentication (the name is associated data).
    doc["values"]["A"], doc["values"]["B"] = doc["values"]["B"], doc["values"]["A"]
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="failed authentication"):
        s.values("staging")


def test_copying_to_another_environment_is_detected(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    doc = json.loads((tmp_path / ".shipyard/secrets/staging.json").read_text())
    doc["env"] = "prod"
    (tmp_path / ".shipyard/secrets/prod.json").write_text(json.dumps(doc))
    with pytest.raises(IntegrityError):
        s.values("prod")


def test_corrupt_file(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    (tmp_path / ".shipyard/secrets/staging.json").write_text("{nope")
    with pytest.raises(IntegrityError, match="not a valid secrets file"):
        s.names("staging")


@pytest.mark.parametrize(
    ("name", "message"),
    [("1ABC", "not a valid environment variable name"), ("A-B", "not a valid environment variable name"),
     ("PORT", "set by shipyard"), ("SHIPYARD_TOKEN", "set by shipyard")],
)
def test_secret_names_validated(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        store(tmp_path).set("staging", {name: "x"})
    assert not (tmp_path / ".shipyard/secrets/staging.json").exists()


@pytest.mark.parametrize("env", ["../etc", "Staging", "", "a/b"])
def test_environment_names_cannot_escape(tmp_path: Path, env: str) -> None:
    with pytest.raises(BadInput, match="lowercase identifiers"):
        store(tmp_path).set(env, {"A": "1"})


def test_unset_unknown_name(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.set("staging", {"A": "1"})
    with pytest.raises(NotFound, match=r"no secret B on staging \(known: A\)"):
        s.unset("staging", ["A", "B"])
    assert s.values("staging") == {"A": "1"}  # nothing removed
    assert s.version("staging") == 1


def test_value_limits(tmp_path: Path) -> None:
    s = store(tmp_path)
    with pytest.raises(ConfigError, match="NUL"):
        s.set("staging", {"A": "a\x00b"})
    with pytest.raises(ConfigError, match="larger than"):
        s.set("staging", {"A": "x" * (64 * 1024 + 1)})
    assert s.set("staging", {"A": "", "B": "multi\nline ünïcode"}) == 1
    assert s.values("staging") == {"A": "", "B": "multi\nline ünïcode"}


def test_write_is_atomic_no_temp_files_left(tmp_path: Path) -> None:
    s = store(tmp_path)
    for i in range(5):
        s.set("staging", {"A": str(i)})
    leftovers = [p.name for p in (tmp_path / ".shipyard").rglob("*.tmp")]
    assert leftovers == []
    assert s.version("staging") == 5


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Separate processes setting secrets at once (and racing to create the key) all land."""
    script = (
        "import sys; from pathlib import Path; from shipyard.primitives.spec.secrets import SecretStore\n"
        "s = SecretStore(Path(sys.argv[1]), environ={})\n"
        "for i in range(8): s.set(sys.argv[2], {f'{sys.argv[3]}_{i}': str(i)})\n"
    )
    state = tmp_path / ".shipyard"
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(state), env, prefix])
        for env, prefix in [("staging", "A"), ("staging", "B"), ("prod", "C")]
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    s = SecretStore(state, environ={})
    assert s.version("staging") == 16 and s.version("prod") == 8
    assert s.values("staging") == {f"{p}_{i}": str(i) for p in "AB" for i in range(8)}
    assert s.values("prod") == {f"C_{i}": str(i) for i in range(8)}
