"""`shipyard backup run` says once that it created the backup key (never printing it); `backup drill`
prints RTO / RPO beside their objectives."""

from __future__ import annotations

import json
import re

from .test_cli import TOML, Project, backup_project, sh

__all__ = ["backup_project"]


def test_the_key_is_announced_once_and_drills_show_their_objectives(backup_project: Project) -> None:
    root = backup_project.dir
    backup_project.ok("up", "--detach", timeout=90)
    first = sh(root, "run", "--env", "staging", "--json")
    assert first.returncode == 0, first.stderr
    json.loads(first.stdout)
    key_file = root / ".shipyard" / "backup.key"
    assert f"created the backup key {key_file}" in first.stderr and "keep a copy" in first.stderr, first.stderr
    key = key_file.read_text().strip()
    assert key not in first.stderr + first.stdout
    again = sh(root, "run", "--env", "staging")
    assert again.returncode == 0 and "backup key" not in again.stderr, again.stderr

    r = sh(root, "drill", "--env", "staging")
    assert r.returncode == 0, r.stdout + r.stderr
    for line in r.stdout.splitlines():
        assert re.search(r" ok  RTO [\d.]+ m?s \(objective 60m\) ok  RPO [\d.]+ m?s \(objective 60m\) ok$", line), line
    drills = json.loads(sh(root, "drill", "--env", "staging", "--json").stdout)
    assert all(d["objectives"] == {"rto_s": 3600.0, "rpo_s": 3600.0} for d in drills), drills

    (root / "shipyard.toml").write_text(TOML.format(port=backup_project.port, rpo="1ms"))
    r = sh(root, "drill", "--env", "staging")
    assert r.returncode == 1 and "(objective 1ms) MISSED" in r.stdout, r.stdout
