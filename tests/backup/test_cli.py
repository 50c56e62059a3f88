"""`shipyard backup ...` end to end in a project directory: real CLI subprocesses talking to a real
control plane (`shipyard up --detach`), which opens the backups and records them in the state store."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

from .conftest import make_tree

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project  # noqa: E402

MASTER_KEY = base64.b64encode(b"m" * 32).decode()

TOML = """
[app]
name = "svc"
run = "python3 app.py"
[app.health]
path = "/health"

[environments.staging]
port = {port}

[environments.staging.backup]
repository = "backups/app"
copy_to = ["offsite/app"]
schedule = "0 3 * * *"
retention = {{ keep_last = 1 }}
rto = "1h"
rpo = "{rpo}"

[[environments.staging.backup.sources]]
name = "uploads"
kind = "files"
path = "uploads"

[[environments.staging.backup.sources]]
name = "cache"
kind = "sqlite"
path = "app.db"
"""


def sh(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_MASTER_KEY": MASTER_KEY}
    return subprocess.run([sys.executable, "-m", "shipyard", "backup", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def backup_project(tmp_path: Path) -> Iterator[Project]:
    """A project with backups configured; the control plane is started by the test."""
    proj = make_project(tmp_path)
    proj.env["SHIPYARD_MASTER_KEY"] = MASTER_KEY
    (proj.dir / "shipyard.toml").write_text(TOML.format(port=proj.port, rpo="1h"))
    (proj.dir / "uploads").mkdir()
    make_tree(proj.dir / "uploads")
    with sqlite3.connect(proj.dir / "app.db") as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    try:
        yield proj
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()


def test_backup_commands_need_the_control_plane(backup_project: Project) -> None:
    r = sh(backup_project.dir, "list", "--env", "staging")
    assert r.returncode == 1 and "shipyard up --detach" in r.stderr and "Traceback" not in r.stderr
    # Input that is wrong whatever the state is refused first, with its own exit code.
    r = sh(backup_project.dir, "restore", "--env", "staging", "--source", "cache")
    assert r.returncode == 3 and "--yes" in r.stderr
    r = sh(backup_project.dir, "list", "--env", "prod")
    assert r.returncode == 2 and "unknown environment 'prod'" in r.stderr


def test_backup_cli_end_to_end(backup_project: Project) -> None:
    tmp_path, port = backup_project.dir, backup_project.port
    backup_project.ok("up", "--detach", timeout=90)

    for _ in range(2):
        r = sh(tmp_path, "run", "--env", "staging")
        assert r.returncode == 0, r.stderr + r.stdout
    assert oct(os.stat(tmp_path / ".shipyard" / "backup.key").st_mode & 0o777) == "0o600"
    listed = json.loads(sh(tmp_path, "list", "--env", "staging", "--json").stdout)
    assert sorted(b["source"] for b in listed["backups"]) == ["cache", "cache", "uploads", "uploads"]

    assert sh(tmp_path, "verify", "--env", "staging").returncode == 0
    sub = json.loads(sh(tmp_path, "verify", "--env", "staging", "--read-data-subset", "10%", "--json").stdout)
    assert len(sub) == 8 and all(v["ok"] for v in sub)  # 4 backups × (primary + offsite)

    plan = json.loads(sh(tmp_path, "forget", "--env", "staging", "--dry-run", "--json").stdout)
    assert [len(p["remove"]) for p in plan] == [1, 1, 1, 1]
    assert sh(tmp_path, "forget", "--env", "staging").returncode == 0
    assert len(json.loads(sh(tmp_path, "list", "--env", "staging", "--json").stdout)["backups"]) == 2

    r = sh(tmp_path, "restore", "--env", "staging", "--source", "uploads", "--to-path", "out", "--yes")
    assert r.returncode == 0, r.stderr
    r = sh(tmp_path, "restore", "--env", "staging", "--source", "cache")
    assert r.returncode == 3 and "--yes" in r.stderr

    r = sh(tmp_path, "drill", "--env", "staging", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    drills = json.loads(r.stdout)
    assert {d["source"] for d in drills} == {"uploads", "cache"}
    assert all(d["ok"] and set(d) >= {"source", "ok", "rto_s", "rpo_s", "checks"} for d in drills)

    (tmp_path / "shipyard.toml").write_text(TOML.format(port=port, rpo="1ms"))
    r = sh(tmp_path, "drill", "--env", "staging")
    assert r.returncode == 1 and "FAIL rpo" in r.stdout

    # A flipped byte in any stored object: verify --read-data and restore fail (exit 1), nothing written.
    blob = next(p for p in (tmp_path / "backups" / "app" / "data").rglob("*") if p.is_file())
    original = blob.read_bytes()
    blob.write_bytes(original[:10] + bytes([original[10] ^ 1]) + original[11:])
    r = sh(tmp_path, "verify", "--env", "staging", "--read-data")
    assert r.returncode == 1 and "failed authentication" in r.stdout + r.stderr, r.stdout + r.stderr
    blob.write_bytes(original)

    store = open_store(None, tmp_path / ".shipyard")
    try:
        assert [d.ok for d in store.list_drills("staging")] == [False, True]
        assert len(store.list_backup_runs("staging")) == 4
    finally:
        store.close()

    # A BACKUP_KEY secret that is not the key the repository was written with: refused, clearly.
    os.environ["SHIPYARD_MASTER_KEY"] = base64.b64encode(b"m" * 32).decode()
    try:
        SecretStore(tmp_path / ".shipyard").set("staging", {"BACKUP_KEY": base64.b64encode(b"k" * 32).decode()})
    finally:
        del os.environ["SHIPYARD_MASTER_KEY"]
    r = sh(tmp_path, "restore", "--env", "staging", "--source", "uploads", "--to-path", "out2")
    assert r.returncode == 2 and "wrong backup key" in r.stderr and "secret BACKUP_KEY" in r.stderr
    assert not (tmp_path / "out2").exists()
