"""The memory rollback trigger measured against the instance's limit, in a real canary deploy."""

from __future__ import annotations

from typing import Any

from .conftest import Project

SPEC = """strategy = "canary"
canary = { steps = [50, 100], step_duration = "20s", min_samples = 10, inconclusive_limit = "60s" }

[environments.staging.resources]
web = { memory = "200Mi" }

[environments.staging.rollback]
memory = { above = "50%", for = "2s" }
"""


def test_a_canary_using_most_of_its_memory_limit_rolls_back(project: Project) -> None:
    project.write_spec(replicas=1, extra=SPEC)
    project.ok("up", "--detach", timeout=90)
    first: Any = project.json("deploy", "--env", "staging")
    assert first["outcome"] == "succeeded", first
    st: Any = project.json("status", "--env", "staging")
    inst = st["instances"][0]
    # Measured against its 200 MiB limit, not the machine: the stable instance is far below half of it.
    assert inst["memory_limit"] == 200 * 1024 * 1024 and inst["limits_enforced"]
    assert inst["rss_bytes"] < 100 * 1024 * 1024
    spec = project.dir / "shipyard.toml"
    # 150 MiB is a few percent of this machine's memory, three quarters of the limit.
    spec.write_text(spec.read_text().replace('GREETING = "hello"\n', 'GREETING = "hello"\nFAULT_HOLD_MIB = "150"\n'))
    project.commit("v2")
    res: Any = project.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "rolled_back", res
    failing = res["rollback"]["canary"]["failing"]
    mem = [f for f in failing if f["condition"].startswith("memory")]
    assert mem, failing
    assert 0.5 < mem[0]["value"] < 1.0, mem  # a share of the limit
    assert project.json("status", "--env", "staging")["release"] == first["release"]  # type: ignore[index]
