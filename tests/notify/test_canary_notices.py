"""A canary that pauses (its judgement inconclusive) or waits at a manual gate tells its receivers, end to
end: real control plane, router, instances and a recording webhook. (Rolled back: test_control_plane.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project, wait_for  # noqa: E402

from .conftest import Recorder  # noqa: E402

EXTRA = """strategy = "canary"
canary = {{ steps = [{{ weight = 20 }}, {{ pause = "1s" }}, {{ pause = {{}} }}, {{ weight = 100 }}], step_duration = "1s", min_samples = 100, inconclusive_limit = "2s" }}

[metrics]
listen = "127.0.0.1:0"
default_alerts = false

[notifications]
[[notifications.receivers]]
name = "canaries"
kind = "webhook"
url = "{url}"
[[notifications.routes]]
match_re = {{ event = "canary_.*" }}
receivers = ["canaries"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Any:
    proj = make_project(tmp_path)
    try:
        yield proj
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()


def test_paused_and_waiting_canary_notify(project: Project, recorder: Recorder) -> None:
    path = f"/canaries-{id(project)}"
    project.write_spec(replicas=1, extra=EXTRA.format(url=recorder.url(path)))
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    project.commit("v2")
    proc = subprocess.Popen([sys.executable, "-m", "shipyard", "deploy", "--env", "staging", "--json"],
                            cwd=project.dir, env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def said(alertname: str) -> list[Any]:
            return [a for p in recorder.at(path) for a in p["alerts"] if a["labels"]["alertname"] == alertname]

        # No traffic: the 20 % bake's judgement stays inconclusive past its limit and pauses for a human.
        assert wait_for(lambda: said("CanaryPaused"), timeout=60, interval=0.2), recorder.at(path)
        paused = said("CanaryPaused")[0]
        assert paused["labels"]["env"] == "staging" and paused["labels"]["severity"] == "warning"
        assert "inconclusive" in paused["annotations"]["summary"], paused
        project.ok("promote", "--env", "staging")  # past the paused step: the manual gate waits
        assert wait_for(lambda: said("CanaryWaiting"), timeout=60, interval=0.2), recorder.at(path)
        assert "waiting for `shipyard promote`" in said("CanaryWaiting")[0]["annotations"]["summary"]
        project.ok("promote", "--env", "staging", "--full")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert json.loads(out)["outcome"] == "succeeded", err
    assert len(said("CanaryPaused")) == 1 and len(said("CanaryWaiting")) == 1  # each told once
