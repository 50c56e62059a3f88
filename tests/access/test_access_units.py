"""Identities, the gate, the failure limit, approval timeouts and the approval spec — over a real SQLite
state store and a test clock (no control plane)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shipyard.control.access.gate import Gatekeeper
from shipyard.control.access.identities import Identity, TokenBook
from shipyard.control.access.limiter import FailureLimiter
from shipyard.control.deploys.approvals import SYSTEM, ApprovalBook
from shipyard.control.deploys.registry import Registry
from shipyard.control.events import EventLog
from shipyard.errors import BadInput, ConfigError, NotFound, NotPermitted, RateLimited, Unauthenticated
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.approval import ApprovalSpec
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.store import Store, open_store

LOCAL = "local-token-value-for-the-test"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = open_store(None, tmp_path)
    yield s
    s.close()


def test_tokens_are_kept_as_digests_and_found_by_id(store: Store, tmp_path: Path) -> None:
    book = TokenBook(store, ManualClock(), LOCAL)
    rec, token = book.create("ci-bot", "deployer", ["staging"], "local (alice)")
    assert token.startswith(f"sy_{rec.token_id}_") and len(token) == 3 + 16 + 1 + 43
    assert rec.digest != token and token not in rec.digest
    assert book.identify(token) == Identity("ci-bot", "deployer", ("staging",))
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert book.identify(wrong) is None, "the right id with a wrong secret is refused"
    assert book.identify("sy_" + "0" * 16 + "_" + "x" * 43) is None and book.identify("garbage") is None
    assert book.identify(LOCAL) == Identity("local", "admin")
    with pytest.raises(BadInput, match="exists already"):
        book.create("ci-bot", "viewer", None, "local")
    for name in ("local", "Bad Name", ""):
        with pytest.raises(BadInput, match="not a valid identity name"):
            book.create(name, "viewer", None, "local")
    with pytest.raises(BadInput, match="unknown role 'root'") as err:
        book.create("x", "root", None, "local")
    assert err.value.exit_code == 2
    store.revoke_token("ci-bot", 5.0)
    assert book.identify(token) is None, "a revoked token is refused"
    _, again = book.create("ci-bot", "viewer", None, "local")  # the name is free again, the old token is not
    assert book.identify(token) is None and book.identify(again) == Identity("ci-bot", "viewer", None)
    store.close()
    for f in tmp_path.rglob("state.db*"):
        assert token.encode() not in f.read_bytes() and again.encode() not in f.read_bytes()


def test_the_gate_checks_role_and_environment(store: Store) -> None:
    clock = ManualClock()
    gate = Gatekeeper(TokenBook(store, clock, LOCAL), FailureLimiter(clock))
    viewer = Identity("v", "viewer")
    stager = Identity("ci", "deployer", ("staging",))
    approver = Identity("a", "approver")
    assert gate.authorize(viewer, "GET", "/v1/status", {}, {"env": "prod"}) == viewer
    with pytest.raises(NotPermitted, match="needs the deployer role or admin") as err:
        gate.authorize(viewer, "POST", "/v1/deploy", {"env": "staging"}, {})
    assert err.value.exit_code == 4 and err.value.http_status == 403
    said = gate.authorize(stager, "POST", "/v1/deploy", {"env": "staging", "performer": "octocat"}, {})
    assert said.performer == "ci (octocat)"
    with pytest.raises(NotPermitted, match="environment 'prod'"):
        gate.authorize(stager, "POST", "/v1/rollback", {"env": "prod"}, {})
    with pytest.raises(NotPermitted, match="environment 'prod'"):
        gate.authorize(stager, "GET", "/v1/logs", {}, {"env": "prod"})
    with pytest.raises(NotPermitted, match="needs the admin role"):
        gate.authorize(stager, "POST", "/v1/deploy", {"env": "staging", "override_window": True}, {})
    with pytest.raises(NotPermitted, match="needs the approver role"):
        gate.authorize(stager, "POST", "/v1/approve", {"deployment": 1}, {})
    with pytest.raises(NotPermitted, match="needs the deployer role"):
        gate.authorize(approver, "POST", "/v1/deploy", {"env": "prod"}, {})
    with pytest.raises(NotPermitted, match="needs the admin role"):
        gate.authorize(stager, "POST", "/v1/some-new-route", {}, {})  # closed by default
    with pytest.raises(Unauthenticated) as unknown:
        gate.identify("nope", "127.0.0.9")
    assert unknown.value.http_status == 401 and unknown.value.exit_code == 4


def test_failures_spend_a_bucket_that_refills_on_the_clock() -> None:
    clock = ManualClock()
    limiter = FailureLimiter(clock, burst=3, per=10.0)
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.failed("10.0.0.1")
    with pytest.raises(RateLimited) as err:
        limiter.check("10.0.0.1")
    assert err.value.http_status == 429 and err.value.retry_after == pytest.approx(10.0)
    limiter.check("10.0.0.2")  # per address
    clock.advance(4.0)
    with pytest.raises(RateLimited) as err:
        limiter.check("10.0.0.1")
    assert err.value.retry_after == pytest.approx(6.0)
    clock.advance(6.0)
    limiter.check("10.0.0.1")


def _plan(timeout: float, required: int = 1) -> Any:
    return SimpleNamespace(env="prod", kind="deploy", release="r2", previous="r1", strategy="rolling", steps=(),
                           approval=ApprovalSpec(required=required, timeout=timeout), to_json=lambda: {})


def test_waiting_deployments_expire_or_are_rejected_without_starting(store: Store) -> None:
    clock = ManualClock()
    book = ApprovalBook(deploys=None, store=store, clock=clock, events=EventLog(store, clock),  # type: ignore[arg-type]
                        registry=Registry())
    w = book.create(_plan(60.0), "bob", "bob (ci)", None)
    assert store.get_deployment(w.dep.id).status == "waiting_approval"  # type: ignore[union-attr]
    assert store.running_deployment("prod") is None, "a waiting deployment holds no lock"
    with pytest.raises(NotPermitted, match="another identity"):
        book.decide(w.dep.id, "bob", "bob", "approve", None)

    async def follow_until_the_end() -> list[dict[str, Any]]:
        got = []
        async for ev in book.follow(w, detach=False):
            got.append(ev)
            if ev["event"] == "waiting_approval" and len(got) == 2:
                clock.advance(59.0)
                assert book.expire_due() == [], "not yet"
                clock.advance(1.0)
                assert book.expire_due() == [w.dep.id]
        return got

    events = asyncio.run(follow_until_the_end())
    assert events[-1]["event"] == "result" and events[-1]["result"]["outcome"] == "expired"
    assert store.get_deployment(w.dep.id).status == "expired"  # type: ignore[union-attr]
    assert [(r.action, r.performer) for r in store.list_audit("prod")] == [
        ("deploy_requested", "bob (ci)"), ("expire", SYSTEM)]

    w2 = book.create(_plan(60.0, required=2), "bob", "bob", None)
    assert book.decide(w2.dep.id, "alice", "alice", "approve", "ok")["status"] == "waiting_approval"
    assert book.decide(w2.dep.id, "carol", "carol", "reject", "no")["status"] == "rejected"
    dep = store.get_deployment(w2.dep.id)
    assert dep is not None and dep.status == "rejected" and "no" in (dep.reason or "")
    assert [a.decision for a in store.approvals_of(w2.dep.id)] == ["approve", "reject"]
    with pytest.raises(NotFound):
        book.decide(999, "alice", "alice", "approve", None)

    w3 = book.create(_plan(60.0), "bob", "bob", None)
    fresh = ApprovalBook(deploys=None, store=store, clock=clock, events=EventLog(store, clock),  # type: ignore[arg-type]
                         registry=Registry())
    assert fresh.restore() == ([], [w3.dep.id]) and not store.waiting_deployments(), \
        "a restart ends what waited without a kept request"
    assert "its request was not kept" in (store.get_deployment(w3.dep.id).reason or "")  # type: ignore[union-attr]


SPEC = {"app": {"name": "svc", "run": "python3 app.py", "health": {"path": "/health"}},
        "environments": {"prod": {"port": 8100}}}


@pytest.mark.parametrize(("approval", "where", "needle"), [
    ({"required": 0}, "environments.prod.approval.required", "must be at least 1, got 0"),
    ({"required": 11}, "environments.prod.approval.required", "must be at most 10, got 11"),
    ({"timeout": "0s"}, "environments.prod.approval.timeout", "must be at least 1"),
    ({"prevent_self_review": "yes"}, "environments.prod.approval.prevent_self_review", "must be true or false"),
    ({"quorum": 2}, "environments.prod.approval.quorum", "unknown key"),
])
def test_bad_approval_settings_name_their_key(approval: dict[str, Any], where: str, needle: str) -> None:
    data = {**SPEC, "environments": {"prod": {"port": 8100, "approval": approval}}}
    with pytest.raises(ConfigError) as err:
        parse_spec(data, Path("shipyard.toml"))
    assert err.value.exit_code == 2
    line = [p for p in err.value.problems if p.startswith(where)]
    assert line and needle in line[0], err.value.problems


def test_approval_on_an_unknown_environment_is_bad_input() -> None:
    data = {**SPEC, "environments": {"prod": {"port": 8100}, "prdo": {"approval": {"required": 1}}}}
    with pytest.raises(ConfigError) as err:
        parse_spec(data, Path("shipyard.toml"))
    assert err.value.exit_code == 2
    assert any(p.startswith("environments.prdo.approval: approval settings for environment 'prdo'")
               for p in err.value.problems), err.value.problems
    ok = parse_spec({**SPEC, "environments": {"prod": {"port": 8100, "approval": {}}}}, Path("shipyard.toml"))
    assert ok.env("prod").approval == ApprovalSpec(required=1, prevent_self_review=True, timeout=86400.0)
