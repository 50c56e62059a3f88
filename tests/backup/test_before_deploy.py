"""``before_deploy = true``: the deploy's first step is a backup (shown in --plan); a failing backup stops the
deploy before anything changed, with the old release serving. Real CLI, control plane and instances."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project  # noqa: E402

BACKUP = """
[environments.staging.backup]
repository = "backups"
before_deploy = true

[[environments.staging.backup.sources]]
name = "uploads"
kind = "files"
path = "{path}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    proj = make_project(tmp_path)
    proj.env["SHIPYARD_MASTER_KEY"] = base64.b64encode(b"m" * 32).decode()
    (proj.dir / "uploads").mkdir()
    (proj.dir / "uploads" / "a.txt").write_text("user upload\n")
    try:
        yield proj
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()


def test_backup_runs_first_and_a_failure_stops_the_deploy(project: Project) -> None:
    project.write_spec(replicas=1, extra=BACKUP.format(path="uploads"))
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    plan: Any = project.json("deploy", "--env", "staging", "--plan")
    assert plan["steps"][0]["kind"] == "backup" and plan["steps"][0]["params"]["sources"] == ["uploads"]
    assert "back up uploads before deploying" in project.ok("deploy", "--env", "staging", "--plan").stdout

    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    assert first["steps"][0]["name"] == "backup" and first["steps"][0]["status"] == "succeeded"
    listed: Any = project.json("backup", "list", "--env", "staging")
    assert [b["source"] for b in listed["backups"]] == ["uploads"]

    project.write_spec(replicas=1, extra=BACKUP.format(path="gone"))  # the source cannot be read now
    project.commit("v2")
    second: Any = project.json("deploy", "--env", "staging", code=1)
    assert second["outcome"] == "failed", second
    assert second["steps"][0]["name"] == "backup" and second["steps"][0]["status"] == "failed"
    assert all(s["status"] not in ("succeeded", "running") for s in second["steps"][1:]), second["steps"]
    assert "backup before deploy failed" in str(second), second
    assert project.get("/")[1]["version"] == "v1"
    status: Any = project.json("status", "--env", "staging")
    assert status["release"] == first["release"]
