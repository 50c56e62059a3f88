"""Deploy windows through the real CLI: a freeze refuses a deploy (exit 3, the next open time), an
override with a reason is recorded, a rollback is never held, a bad window is exit 2 with its key path."""

from __future__ import annotations

from typing import Any

from shipyard.primitives.store import open_store

from .conftest import Project

FROZEN = """
[environments.staging.windows]
timezone = "Asia/Seoul"
freeze = [{ from = "2020-01-01T00:00", to = "2100-01-01T00:00", reason = "test freeze" }]
"""


def test_a_freeze_holds_deploys_but_not_rollbacks(project: Project) -> None:
    project.write_spec(replicas=1)
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    project.commit("v2")
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    project.write_spec(replicas=1, extra=FROZEN)
    project.commit("v3")
    plan: Any = project.json("deploy", "--env", "staging", "--plan")
    assert plan["window"]["allowed"] is False and "test freeze" in plan["window"]["reason"]
    refused = project.cli("deploy", "--env", "staging")
    assert refused.returncode == 3, refused.stderr
    assert "test freeze" in refused.stderr and "next allowed 2100-01-01 00:00 KST" in refused.stderr
    assert project.get("/")[1]["version"] == "v2"
    rb: Any = project.json("rollback", "--env", "staging")
    assert rb["outcome"] == "succeeded", "a rollback is never held by a window"
    no_reason = project.cli("deploy", "--env", "staging", "--override-window")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    over: Any = project.json("deploy", "--env", "staging", "--override-window", "--reason", "hotfix for outage")
    assert over["outcome"] == "succeeded"
    store = open_store(None, project.dir / ".shipyard")
    try:
        overrides = [e for e in store.list_events("staging") if e.kind == "window_override"]
    finally:
        store.close()
    assert len(overrides) == 1 and "hotfix for outage" in overrides[0].message


def test_bad_windows_are_exit_2_with_the_key_path(project: Project) -> None:
    project.write_spec(replicas=1, extra='\n[environments.staging.windows]\ntimezone = "Mars/Olympus"\n')
    project.commit("v1")
    proc = project.cli("up", "--detach")
    assert proc.returncode == 2, proc.stderr
    assert "environments.staging.windows.timezone" in proc.stderr and "Traceback" not in proc.stderr
    project.write_spec(replicas=1, extra='\n[environments.staging.windows]\n'
                       'allow = [{ days = "mon-fri", from = "2am", to = "04:00" }]\n')
    proc = project.cli("up", "--detach")
    assert proc.returncode == 2 and "environments.staging.windows.allow" in proc.stderr, proc.stderr
