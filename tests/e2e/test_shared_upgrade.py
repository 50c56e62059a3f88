"""Upgrading a project whose shared dir served every environment: `shipyard up` brings the environment
back with a complete copy of it, the original untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .conftest import Project


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_up_after_an_upgrade_copies_the_old_shared_dir_without_losing_a_byte(running: Project) -> None:
    first: Any = running.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    running.ok("down", timeout=120)

    # Turn the state into what the previous version left: one shared/instance for all, linked from the
    # release, the release's metadata without "shared", no work dirs.
    state = running.dir / ".shipyard"
    shutil.rmtree(state / "shared")
    shutil.rmtree(state / "workdirs")
    old = state / "shared" / "instance"
    (old / "uploads").mkdir(parents=True)
    (old / "app.db").write_bytes(os.urandom(1 << 20))
    (old / "uploads" / "a.bin").write_bytes(os.urandom(12345))
    release = state / "releases" / first["release"]
    meta = json.loads((release / ".shipyard-release.json").read_text())
    del meta["shared"]
    (release / ".shipyard-release.json").write_text(json.dumps(meta))
    (release / "instance").symlink_to("../../shared/instance")
    before = _digest(old)

    running.ok("up", "--detach", timeout=90)  # brings staging back on its release: its first start
    status: Any = running.json("status", "--env", "staging")
    assert status["release"] == first["release"] and all(i["ready"] for i in status["instances"]), status
    assert _digest(state / "shared" / "staging" / "instance") == before
    assert _digest(old) == before
    log = (state / "logs" / "control.log").read_text()
    assert "migrated shared dir instance to environment staging" in log
