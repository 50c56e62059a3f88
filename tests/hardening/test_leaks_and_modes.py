"""Leaks and permissions (issue "Hardening", item 8): secrets never echoed, a readable token replaced,
nothing sensitive under .shipyard/ readable by anyone but the project's user."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from sandbox import Project

from shipyard.control.token import ensure_token

# Release trees are the app's code (git archive + build), not state; their modes are the build's — and so
# are the work dirs, hard links of those trees. Shared dirs hold what the app writes, in its own modes.
NOT_STATE = ("releases", "workdirs", "shared", "cache")


def wide_modes(state: Path) -> list[str]:
    wide = []
    for root, dirs, files in os.walk(state):
        rel = Path(root).relative_to(state)
        if rel.parts and rel.parts[0] in NOT_STATE:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                wide.append(f"{path.relative_to(state)} {stat.S_IMODE(st.st_mode):04o}")
    return wide


def test_nothing_under_shipyard_is_readable_by_others_after_a_deploy(project: Project) -> None:
    os.umask(0o022)  # the usual one: what shipyard writes must not depend on the caller's umask
    proj = project
    proj.cli("secrets", "set", "--env", "staging", "API_KEY=s3cr3t-value", timeout=60).check_returncode()
    proj.ok("up", "--detach", timeout=90)
    proj.ok("deploy", "--env", "staging", timeout=180)
    status, _ = proj.get("/")
    assert status == 200
    state = proj.dir / ".shipyard"
    expected = ["state.db", "token", "control.json", "master.key", "run/router.json", "logs/control.log",
                "logs/router/router.log"]
    for name in expected:
        assert (state / name).exists(), name
    assert list((state / "logs" / "staging").glob("*.log")), "no instance log"
    assert list((state / "secrets").glob("*.json")), "no secrets file"
    assert wide_modes(state) == []


def test_secrets_set_never_echoes_a_value(project: Project) -> None:
    for args in (["hunter2-the-value"], ["A=1", "hunter2-the-value"], ["hunter-2=the-value=x"],
                 ["hunter 2=the-value"]):
        proc = project.cli("secrets", "set", "--env", "staging", *args, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "hunter" not in proc.stdout + proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert project.cli("secrets", "list", "--env", "staging").stdout.strip() == ""


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_others_could_read_is_replaced(tmp_path: Path, mode: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token"
    path.write_text("old-token\n")
    path.chmod(mode)
    with caplog.at_level(logging.WARNING):
        token = ensure_token(path)
    assert token != "old-token" and len(token) >= 40
    assert path.read_text().strip() == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"mode {mode:04o}" in caplog.text and "replaced with a new token" in caplog.text
    assert ensure_token(path) == token  # kept from now on


def test_a_private_token_is_kept_and_a_fifo_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    first = ensure_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(path) == first
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(Exception, match="not a regular file"):
        ensure_token(fifo)
