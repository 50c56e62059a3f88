"""A deploy waiting for approval survives a control-plane restart (SIGKILL, or down and up): after `up` it
still waits, with its approvals so far, and the next approval starts the very plan asked for — the commit
asked for, not where the branch moved since. A plan that would differ after the restart (shipyard.toml
changed) is not started: it ends `interrupted`, saying why. The real CLI, control plane and instances."""

from __future__ import annotations

import http.client
import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox import free_port, make_project, wait_for

from .conftest import Actors

PROD = """
[environments.prod]
port = {port}
replicas = {replicas}

[environments.prod.approval]
required = 2
prevent_self_review = true
timeout = "1h"
"""


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Actors, int]]:
    proj = make_project(tmp_path_factory.mktemp("approval-restart"))
    port = free_port()
    proj.write_spec(replicas=1, extra=PROD.format(port=port, replicas=1))
    proj.commit("v1")
    try:
        proj.ok("up", "--detach", timeout=90)
        yield Actors(proj), port
    finally:
        try:
            if proj.control_pid():
                proj.cli("down", timeout=120)
        finally:
            proj.kill_everything()


def _history(a: Actors) -> list[dict[str, Any]]:
    return list(a.as_json(None, "history", "--env", "prod"))  # type: ignore[call-overload]


def _waiting(a: Actors) -> list[dict[str, Any]]:
    """``GET /v1/approvals`` with the project's token (what waits, with its approvals so far)."""
    state = a.project.dir / ".shipyard"
    port = int(json.loads((state / "control.json").read_text())["port"])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/v1/approvals", headers={"Authorization": f"Bearer {(state / 'token').read_text().strip()}"})
        resp = conn.getresponse()
        assert resp.status == 200
        return list(json.loads(resp.read()))
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_a_waiting_deploy_survives_sigkill_with_its_approvals_and_starts_the_plan_asked_for(
        gated: tuple[Actors, int]) -> None:
    a, _ = gated
    bob = a.create("bob", "deployer", "prod")
    alice = a.create("alice", "approver")
    carol = a.create("carol", "approver")
    asked: Any = a.as_json(bob, "deploy", "--env", "prod", "--detach")
    dep, release = asked["deployment"], asked["release"]
    assert a.run(alice, "approve", str(dep), "-m", "one of two").returncode == 0
    a.project.commit("v1-late")  # the branch moves on; the approval is for the commit asked for

    pid = a.project.control_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not _alive(pid), 10)
    a.project.ok("up", "--detach", timeout=90)

    row = _history(a)[0]
    assert (row["deployment"], row["outcome"]) == (dep, "waiting_approval"), row
    (waiting,) = _waiting(a)
    assert (waiting["deployment"], waiting["approvals"], waiting["required"]) == (dep, ["alice"], 2)
    assert waiting["requested_by"].startswith("bob")
    again = a.run(alice, "approve", str(dep))  # the same identity again: still one of two
    assert again.returncode == 0 and _history(a)[0]["outcome"] == "waiting_approval", again.stderr
    ok = a.run(carol, "approve", str(dep), "-m", "two of two")
    assert ok.returncode == 0 and "has started" in ok.stdout, ok.stderr
    assert wait_for(lambda: _history(a)[0]["outcome"] == "succeeded", 90)
    status: Any = a.as_json(None, "status", "--env", "prod")
    assert status["release"] == release, "the release planned before the restart, not the moved branch's"
    acts = [(r["action"], r["performer"].split(" (")[0]) for r in a.as_json(None, "audit", "--env", "prod")]  # type: ignore[union-attr]
    assert acts[:4] == [("deploy_requested", "bob"), ("approve", "alice"), ("approve", "carol"), ("deploy", "bob")]


def test_a_plan_that_changed_while_the_control_plane_was_down_is_not_started(gated: tuple[Actors, int]) -> None:
    a, port = gated
    bob = a.tokens["bob"]
    asked: Any = a.as_json(bob, "deploy", "--env", "prod", "--detach")
    dep = asked["deployment"]
    a.project.ok("down", timeout=120)
    a.project.write_spec(replicas=1, extra=PROD.format(port=port, replicas=2))  # what the plan would start differs
    a.project.ok("up", "--detach", timeout=90)

    row = next(r for r in _history(a) if r["deployment"] == dep)  # `up` after `down` adds a restore after it
    assert row["outcome"] == "interrupted", row
    assert "its plan is no longer the one asked for" in row["reason"] and "deploy again" in row["reason"]
    assert _waiting(a) == []
    late = a.run(a.tokens["alice"], "approve", str(dep))
    assert late.returncode == 3 and "not waiting" in late.stderr
    events = json.dumps(a.as_json(None, "events", "--env", "prod"))
    assert f"deployment {dep} interrupted" in events
