"""Notifications end to end through a real control plane, router, instances and receivers.

One project: an alert fires and is delivered (webhook, a real Alertmanager); a second receiver is down,
so its delivery is pending when the control plane is SIGKILLed. After `shipyard up` that delivery is
sent, and the first receiver is not told again. Then a canary that its judgement rolls back sends a
notification carrying the failing condition, its values and window; `notify test` and `silence` work
through the CLI.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, make_project, wait_for  # noqa: E402
from traffic import Traffic  # noqa: E402

from .conftest import Alertmanager, Recorder  # noqa: E402

EXTRA = """strategy = "canary"
canary = {{ steps = [20, 50, 100], step_duration = "30s", min_samples = 20, inconclusive_limit = "30s" }}

[metrics]
listen = "127.0.0.1:0"
default_alerts = false

[[alerts]]
name = "TrafficSeen"
env = "staging"
expr = "rps[1m] > 0"
severity = "critical"
summary = "{{{{ env }}}} serves {{{{ value }}}} req/s"

[notifications]
group_wait = "0s"
group_interval = "1s"
repeat_interval = "1h"
[[notifications.receivers]]
name = "live"
kind = "webhook"
url = "{live}"
[[notifications.receivers]]
name = "down"
kind = "slack"
url_secret = "SLACK_URL"
[[notifications.receivers]]
name = "am"
kind = "alertmanager"
url = "{am}"
[[notifications.receivers]]
name = "deploys"
kind = "webhook"
url = "{deploys}"
[[notifications.routes]]
match = {{ alertname = "TrafficSeen" }}
receivers = ["live", "down", "am"]
[[notifications.routes]]
match_re = {{ event = "deployment_.*" }}
receivers = ["deploys"]
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


def firing(posts: list[Any], name: str = "TrafficSeen") -> list[Any]:
    return [p for p in posts if p.get("status") == "firing" and any(a["labels"].get("alertname") == name
                                                                      for a in p.get("alerts", []))]


def test_sigkill_neither_repeats_nor_loses_and_canary_rollback_notifies(
        project: Project, recorder: Recorder, alertmanager: Alertmanager) -> None:
    recorder.failing.add("/down")
    project.write_spec(replicas=2, extra=EXTRA.format(live=recorder.url("/live"), am=alertmanager.url,
                                                      deploys=recorder.url("/deploys")))
    project.commit("v1")
    project.ok("secrets", "set", "--env", "staging", f"SLACK_URL={recorder.url('/down')}")
    project.ok("up", "--detach", timeout=90)
    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded"
    with Traffic(project.port, rate=50, connections=2):
        assert wait_for(lambda: firing(recorder.at("/live")), timeout=40, interval=0.2)
    assert wait_for(lambda: any(a["labels"].get("alertname") == "TrafficSeen" for a in alertmanager.alerts()), 10)

    def down_delivery() -> Any:
        doc: Any = project.json("notify", "deliveries", "--receiver", "down")
        return next(iter(doc["deliveries"]), None)

    assert wait_for(lambda: (down_delivery() or {}).get("attempts", 0) >= 1, timeout=20, interval=0.3)
    pending = down_delivery()
    assert pending["status"] == "pending" and "HTTP 503" in pending["last_error"]
    assert "/down" not in pending["last_error"] and "127.0.0.1" not in pending["last_error"]

    pid = project.control_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie", 10)
    recorder.failing.discard("/down")
    project.ok("up", "--detach", timeout=90)
    assert wait_for(lambda: recorder.at("/down"), timeout=30, interval=0.2), "the pending delivery is sent"
    body = recorder.at("/down")[0]
    assert body["text"].startswith("[FIRING:1] TrafficSeen staging")
    # Evaluations after the restart see the alert still firing (rps over the last minute) and tell no one.
    evals = project.json("alerts", "--env", "staging")["evaluations"]  # type: ignore[index]
    assert wait_for(lambda: project.json("alerts", "--env", "staging")["evaluations"] >= evals + 2,  # type: ignore[index]
                    timeout=30, interval=0.5)
    assert next(r for r in project.json("alerts", "--env", "staging")["rules"]  # type: ignore[index]
                if r["name"] == "TrafficSeen")["state"] == "firing"
    assert len(firing(recorder.at("/live"))) == 1, recorder.at("/live")
    assert len(recorder.at("/down")) == 1

    # A canary with 30 % errors, rolled back by its judgement: the notice says what failed, how, when.
    spec = project.dir / "shipyard.toml"
    spec.write_text(spec.read_text().replace('GREETING = "hello"\n', 'GREETING = "hello"\nFAULT_ERROR_RATE = "0.3"\n'))
    project.commit("v2")
    with Traffic(project.port, rate=150, connections=6):
        res: Any = project.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "rolled_back", res
    assert wait_for(lambda: [p for p in recorder.at("/deploys")
                             if p["alerts"][0]["labels"]["alertname"] == "DeploymentRolledBack"], 15)
    kinds = [p["alerts"][0]["labels"]["alertname"] for p in recorder.at("/deploys")]
    assert kinds == ["DeploymentStarted", "DeploymentSucceeded", "DeploymentStarted", "DeploymentRolledBack"], kinds
    notice = recorder.at("/deploys")[-1]["alerts"][0]
    failing = res["rollback"]["canary"]["failing"]
    errors = next(f for f in failing if f["condition"] == "judgement: errors")
    described = notice["annotations"]["description"]
    assert "condition judgement: errors" in described
    assert f"'canary': {errors['value']['canary']}" in described and f"window {errors['window']}" in described
    assert notice["labels"]["release"] == res["release"] and "rolled back" in notice["annotations"]["summary"]

    # notify test and silences, through the CLI.
    test: Any = project.json("notify", "test", "--receiver", "down")
    assert test["delivery"]["status"] == "delivered"
    assert recorder.at("/down")[-1]["text"].startswith("ShipyardTest on staging")
    added: Any = project.json("silence", "add", "--match", "env=staging,alertname=~Traffic.*", "--for", "2h",
                              "-m", "known issue")
    listed: Any = project.json("silence", "list")
    assert [s["id"] for s in listed["silences"]] == [added["id"]] and listed["silences"][0]["state"] == "active"
    project.ok("silence", "expire", str(added["id"]))
    assert project.json("silence", "list")["silences"] == []  # type: ignore[index]
    bad = project.cli("silence", "add", "--match", "env", "--for", "2h", "-m", "x")
    assert bad.returncode == 2 and "--match: expected label=value" in bad.stderr
