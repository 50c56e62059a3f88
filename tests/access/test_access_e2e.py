"""Identities, roles, approvals and the audit through the real CLI and control plane (issue 11, parts 5–6).

The module's tests share one running project and run in order: roles on staging, approvals on prod, then
the token-leak grep over everything the earlier tests printed and the state directory, then the failed
attempt limit (from another loopback address, so the CLI's own address stays unlimited).
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from sandbox import git, wait_for

from .conftest import Actors


def _call(a: Actors, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
          ) -> tuple[int, Any]:
    """Straight to the API (assertions and side checks: no CLI start-up each time); the project's token
    unless ``token``."""
    state = a.project.dir / ".shipyard"
    port = int(json.loads((state / "control.json").read_text())["port"])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers={
            "Authorization": f"Bearer {token or (state / 'token').read_text().strip()}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _get(a: Actors, path: str) -> Any:
    status, doc = _call(a, "GET", path)
    assert status == 200, doc
    return doc


def _history(a: Actors, env: str) -> list[dict[str, Any]]:
    return list(_get(a, f"/v1/history?env={env}"))


def _serving(a: Actors, env: str) -> object:
    return _get(a, f"/v1/status?env={env}")["release"]


def test_roles_limit_what_each_identity_may_do(actors: Actors) -> None:
    a = actors
    bad = a.run(None, "token", "create", "x", "--role", "god")
    assert bad.returncode == 2 and "unknown role 'god'" in bad.stderr and "Traceback" not in bad.stderr
    viewer = a.create("viewer-1", "viewer")
    stager = a.create("ci-bot", "deployer", "staging")
    listed: Any = a.as_json(None, "token", "list")
    assert [(t["name"], t["role"], t["envs"]) for t in listed] == [("ci-bot", "deployer", ["staging"]),
                                                                  ("viewer-1", "viewer", None)]

    assert _call(a, "GET", "/v1/status?env=staging", token=viewer)[0] == 200, "a viewer reads"
    denied = a.run(viewer, "deploy", "--env", "staging")
    assert denied.returncode == 4, denied.stderr
    assert "needs the deployer role" in denied.stderr and "Traceback" not in denied.stderr
    assert not _history(a, "staging"), "a refused deploy starts nothing"

    prod = a.run(stager, "deploy", "--env", "prod")
    assert prod.returncode == 4 and "environment 'prod'" in prod.stderr, prod.stderr
    status, no_admin = _call(a, "POST", "/v1/tokens", {"name": "sneaky", "role": "admin"}, token=stager)
    assert (status, no_admin["exit_code"]) == (403, 4) and "needs the admin role" in no_admin["error"]
    # Its own environment it may: a plan (a deploy there is what the approval test below runs, as bob).
    planned = a.run(stager, "deploy", "--env", "staging", "--plan", "--json")
    assert planned.returncode == 0 and json.loads(planned.stdout)["env"] == "staging", planned.stderr
    for action in ("acquire", "release"):
        assert _call(a, "POST", "/v1/lock", {"env": "staging", "action": action, "message": "ci holds it",
                                            "performer": "octocat"}, token=stager)[0] == 200

    no_approve = a.run(viewer, "approve", "1")
    assert no_approve.returncode == 4 and "needs the approver role" in no_approve.stderr

    assert a.run(None, "token", "revoke", "ci-bot").returncode == 0
    revoked = a.run(stager, "status", "--env", "staging")
    assert revoked.returncode == 4 and "unknown or revoked" in revoked.stderr, revoked.stderr
    assert [t["revoked"] for t in _get(a, "/v1/tokens") if t["name"] == "ci-bot"] == [True]
    assert _call(a, "GET", "/v1/whoami", token=stager)[0] == 401

    log: Any = a.as_json(viewer, "audit")
    seen = {(r["action"], r["target"]): r["performer"] for r in log}
    assert seen[("token_create", "ci-bot")].startswith("local (")
    assert seen[("lock_acquire", None)] == "ci-bot (octocat)", "the identity, and whom it says it acts for"
    assert seen[("token_revoke", "ci-bot")].startswith("local (")


def test_approvals_wait_start_on_another_identity_and_end_on_reject(actors: Actors) -> None:
    a = actors
    alice = a.create("alice", "approver")
    bob = a.create("bob", "deployer", "prod")
    plan: Any = a.as_json(bob, "deploy", "--env", "prod", "--plan")
    assert plan["approval"] == {"required": 1, "prevent_self_review": True, "timeout_s": 3600.0}
    shown = a.run(bob, "deploy", "--env", "prod", "--plan")
    assert "approval: waits for 1 approval(s)" in shown.stdout

    asked = a.run(bob, "deploy", "--env", "prod", "--detach", "--json", performer="octocat")
    assert asked.returncode == 0, asked.stderr
    waiting = json.loads(asked.stdout)
    first = waiting["deployment"]
    assert waiting["requested_by"] == "bob (octocat)"
    assert waiting["event"] == "waiting_approval" and waiting["required"] == 1
    assert _history(a, "prod")[0]["outcome"] == "waiting_approval"
    assert _serving(a, "prod") is None, "nothing starts before the approval"
    assert _get(a, "/v1/status?env=prod")["last_deployment"]["outcome"] == "waiting_approval"  # status too
    own = a.run(bob, "approve", str(first))
    assert own.returncode == 4 and "approver role" in own.stderr
    ok = a.run(alice, "approve", str(first), "-m", "lgtm")
    assert ok.returncode == 0 and "has started" in ok.stdout, ok.stderr
    assert wait_for(lambda: _history(a, "prod")[0]["outcome"] == "succeeded", 60)
    v1 = _serving(a, "prod")
    assert v1 == plan["release"], "the approved deployment applies the plan prepared when it was asked for"

    sha2 = a.project.commit("v2")
    follower = a.popen(None, "deploy", "--env", "prod")  # the local admin asks and waits
    assert wait_for(lambda: _history(a, "prod")[0]["outcome"] == "waiting_approval", 30)
    second = _history(a, "prod")[0]["deployment"]
    a.project.commit("v2-late")  # after the plan was prepared: not what the approval starts
    selfie = a.run(None, "approve", str(second))
    assert selfie.returncode == 4 and "another identity" in selfie.stderr, selfie.stderr
    assert a.run(alice, "approve", str(second)).returncode == 0
    out, err = follower.communicate(timeout=90)
    a.outputs += [out, err]
    assert follower.returncode == 0, err
    assert f"deployment {second} (" in out and "waits for approval: 0/1" in out
    assert "deploy succeeded" in out
    v2 = _serving(a, "prod")
    assert v2 != v1 and str(v2).endswith(sha2[:7]), "exactly the plan prepared when it was asked for"

    third: Any = a.as_json(bob, "deploy", "--env", "prod", "--detach")
    lock = {"env": "prod", "message": "db maintenance", "performer": "ops"}
    assert _call(a, "POST", "/v1/lock", {**lock, "action": "acquire"})[0] == 200
    blocked = a.run(alice, "approve", str(third["deployment"]))
    assert blocked.returncode == 3 and "checked again at its start" in blocked.stderr, blocked.stderr
    assert "db maintenance" in blocked.stderr and _history(a, "prod")[0]["outcome"] == "waiting_approval"
    assert _call(a, "POST", "/v1/lock", {**lock, "action": "release"})[0] == 200
    rejected = a.run(None, "reject", str(third["deployment"]), "-m", "not today")
    assert rejected.returncode == 0 and "rejected" in rejected.stdout
    row = _history(a, "prod")[0]
    assert (row["deployment"], row["outcome"]) == (third["deployment"], "rejected")
    assert "not today" in row["reason"] and _serving(a, "prod") == v2, "a rejection touches nothing serving"
    again = a.run(alice, "approve", str(third["deployment"]))
    assert again.returncode == 3 and "not waiting" in again.stderr

    rb = a.run(bob, "rollback", "--env", "prod", "--json")
    assert rb.returncode == 0, rb.stderr
    assert json.loads(rb.stdout)["outcome"] == "succeeded", "a rollback never waits for approval"
    assert _serving(a, "prod") == v1

    log: Any = a.as_json(None, "audit", "--env", "prod")
    acts = [(r["action"], r["performer"].split(" (")[0]) for r in log]  # "bob (the OS user)"
    assert acts[:3] == [("deploy_requested", "bob"), ("approve", "alice"), ("deploy", "bob")]
    assert ("reject", "local") in acts and acts[-1] == ("rollback", "bob")
    assert ("lock_acquire", "local") in acts and ("lock_release", "local") in acts
    assert [r["detail"]["message"] for r in log if r["action"] == "approve"][0] == "lgtm"


def test_no_token_value_is_stored_logged_or_printed(actors: Actors) -> None:
    a = actors
    state = a.project.dir / ".shipyard"
    local = (state / "token").read_text().strip()
    secrets = [*a.tokens.values(), local]
    assert len(a.tokens) >= 4
    # The secrets change goes through the API now: audited by name, never by value.
    assert a.run(None, "secrets", "set", "--env", "staging", "API_KEY=v-should-not-leak").returncode == 0
    files = [p for p in state.rglob("*") if p.is_file() and p != state / "token"]
    assert any(p.name == "state.db" for p in files) and any(p.suffix == ".log" for p in files)
    for path in files:
        data = path.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"a token is in {path.relative_to(a.project.dir)}"
    for text in a.outputs:
        for s in secrets:
            assert s not in text
    audit: Any = a.as_json(None, "audit", "--env", "staging")
    change = [r for r in audit if r["action"] == "secrets_set"]
    assert change and change[-1]["detail"]["names"] == ["API_KEY"] and "v-should-not-leak" not in json.dumps(audit)


def _raw(port: int, token: str, source: str) -> tuple[int, str | None]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.sock = sock
    try:
        conn.request("GET", "/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("Retry-After")
    finally:
        conn.close()


def test_failed_attempts_are_limited_per_address(actors: Actors) -> None:
    a = actors
    port = int(json.loads((a.project.dir / ".shipyard" / "control.json").read_text())["port"])
    local = (a.project.dir / ".shipyard" / "token").read_text().strip()
    answers = [_raw(port, f"sy_{i:016x}_{'x' * 43}", "127.0.0.2")[0] for i in range(12)]
    assert answers[:10] == [401] * 10 and answers[10:] == [429, 429], answers
    status, retry = _raw(port, local, "127.0.0.2")
    assert status == 429 and retry is not None and int(retry) >= 1, "even a right token waits: no oracle"
    assert _raw(port, local, "127.0.0.1") == (200, None), "another address is not held"
    assert "refused a wrong token from 127.0.0.2" in (a.project.dir / ".shipyard/logs/control.log").read_text()
    git(a.project.dir, "status")  # the project is untouched
    assert Path(a.project.dir / ".shipyard" / "token").stat().st_mode & 0o077 == 0
