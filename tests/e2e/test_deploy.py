"""The path a user walks: up → deploy → blue-green under load → rollback → rolling → status/history."""

from __future__ import annotations

from typing import Any

from traffic import Traffic

from .conftest import Project


def test_first_deploy_serves_and_reports(running: Project) -> None:
    res: Any = running.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded", res
    assert res["previous_release"] is None
    assert {s["name"] for s in res["steps"]} >= {"build", "start", "wait_ready", "route"}
    assert all(s["status"] == "succeeded" for s in res["steps"])
    status, body = running.get("/")
    assert status == 200 and body["version"] == "v1" and body["greeting"] == "hello"
    st: Any = running.json("status", "--env", "staging")
    assert st["release"] == res["release"]
    assert st["weights"] == {res["release"]: 100}
    assert st["url"] == f"http://127.0.0.1:{running.port}"
    assert len(st["instances"]) == 3 and all(i["ready"] for i in st["instances"])
    assert len({i["pid"] for i in st["instances"]}) == 3


def test_zero_downtime_blue_green_rollback_and_rolling(running: Project) -> None:
    first: Any = running.json("deploy", "--env", "staging")
    running.commit("v2")
    with Traffic(running.port, rate=150, connections=6) as traffic:
        bg: Any = running.json("deploy", "--env", "staging")
        assert bg["outcome"] == "succeeded", bg
        assert running.get("/")[1]["version"] == "v2"
        rb: Any = running.json("rollback", "--env", "staging")
        assert rb["outcome"] == "succeeded", rb
        assert rb["release"] == first["release"]
        assert [s["name"] for s in rb["steps"]][:1] == ["route"], "a warm rollback is a router switch"
        assert running.get("/")[1]["version"] == "v1"
        rolling: Any = running.json("deploy", "--env", "staging", "--strategy", "rolling",
                                    "--release", bg["release"])
        assert rolling["outcome"] == "succeeded", rolling
        assert running.get("/")[1]["version"] == "v2"
    counts = traffic.counts
    # Traffic ran through all three (one second of it at the least, however fast they were).
    assert counts.sent > 150, counts.summary()
    assert counts.failed == 0, f"{counts.summary()} errors={dict(counts.errors)} statuses={dict(counts.statuses)}"
    assert counts.versions["v1"] > 0 and counts.versions["v2"] > 0
    hist: Any = running.json("history", "--env", "staging")
    assert [h["kind"] for h in hist[:4]] == ["deploy", "rollback", "deploy", "deploy"]
    assert all(h["outcome"] == "succeeded" for h in hist)
    rels: Any = running.json("releases")
    assert len(rels) == 2


def test_plan_changes_nothing(running: Project) -> None:
    running.json("deploy", "--env", "staging")
    before: Any = running.json("status", "--env", "staging")
    running.commit("v2")
    (running.dir / "shipyard.toml").write_text((running.dir / "shipyard.toml").read_text().replace(
        'GREETING = "hello"', 'GREETING = "hi"'))
    plan: Any = running.json("deploy", "--env", "staging", "--plan")
    assert plan["build"] is True and plan["previous_release"] == before["release"]
    assert [s["name"] for s in plan["steps"]][:3] == ["build", "start", "wait_ready"]
    assert all(s["estimate_s"] > 0 for s in plan["steps"])
    assert any("GREETING" in k for k in plan["changes"]["config_changed"]), plan["changes"]
    assert plan["changes"]["commits"][0]["message"] == "version v2"
    assert plan["health_gates"]["health"]["path"] == "/health"
    after: Any = running.json("status", "--env", "staging")
    assert after["release"] == before["release"]
    assert sorted(i["pid"] for i in after["instances"]) == sorted(i["pid"] for i in before["instances"])
    assert len(running.json("history", "--env", "staging")) == 1  # type: ignore[arg-type]
    assert len(running.json("releases")) == 1  # type: ignore[arg-type]
    human = running.ok("deploy", "--env", "staging", "--plan").stdout
    assert "switch 100% of traffic" in human


def test_secrets_reach_instances_and_are_never_shown(running: Project) -> None:
    running.ok("secrets", "set", "--env", "staging", "API_TOKEN=s3cr3t-value", "GREETING=from-secret")
    listed = running.ok("secrets", "list", "--env", "staging").stdout
    assert "API_TOKEN" in listed and "s3cr3t-value" not in listed
    shown = running.ok("config", "show", "--env", "staging").stdout
    assert "s3cr3t-value" not in shown and "API_TOKEN" in shown
    plan = running.ok("deploy", "--env", "staging", "--plan").stdout
    assert "s3cr3t-value" not in plan
    res: Any = running.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded"
    assert running.get("/")[1]["greeting"] == "from-secret"
    state = running.dir / ".shipyard"
    for path in state.rglob("*"):
        if path.is_file() and "logs" not in path.parts:
            assert b"s3cr3t-value" not in path.read_bytes(), path


def test_verify_no_go_rolls_the_deployment_back(running: Project) -> None:
    first: Any = running.json("deploy", "--env", "staging")
    running.write_spec(extra='''
[environments.staging.env]
FAULT_ERROR_RATE = "0.5"

[environments.staging.verify]
rate = 50
duration = "2s"
thresholds = { http_req_failed = ["rate<0.01"] }
''')
    running.commit("v2")
    res: Any = running.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "rolled_back", res
    assert "verify" in res["reason"] and "http_req_failed" in res["reason"]
    assert [s["status"] for s in res["steps"] if s["name"] == "verify"] == ["failed"]
    assert running.get("/")[1]["version"] == "v1"
    st: Any = running.json("status", "--env", "staging")
    assert st["release"] == first["release"] and st["weights"] == {first["release"]: 100}
