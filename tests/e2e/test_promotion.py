"""Promotion: prod takes only the release that served staging, for long enough, verified there; `--from`
deploys that very release id (never a rebuild) with prod's own configuration."""

from __future__ import annotations

from typing import Any

from .conftest import Project


def _two_envs(project: Project, policy: str) -> int:
    project.write_spec(replicas=1)
    from sandbox import free_port

    prod = free_port()
    spec = project.dir / "shipyard.toml"
    spec.write_text(spec.read_text() + f'\n[environments.prod]\nport = {prod}\nreplicas = 1\n'
                    f'\n[environments.prod.env]\nGREETING = "prod hello"\n' + policy)
    return prod


def test_prod_takes_only_what_served_staging_long_enough(project: Project) -> None:
    _two_envs(project, '\n[environments.prod.promotion]\nfrom = "staging"\nsoak = "1h"\n')
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    never = project.cli("deploy", "--env", "prod")
    assert never.returncode == 3 and "never served staging" in never.stderr, never.stderr
    staged: Any = project.json("deploy", "--env", "staging")
    assert staged["outcome"] == "succeeded"
    young = project.cli("deploy", "--env", "prod", "--from", "staging")
    assert young.returncode == 3, young.stderr
    assert "has served staging for" in young.stderr and "not 60m" in young.stderr and "qualifies at" in young.stderr


def test_from_deploys_the_very_release_serving_staging(project: Project) -> None:
    prod = _two_envs(project, '\n[environments.prod.promotion]\nfrom = "staging"\n')
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    empty = project.cli("deploy", "--env", "prod", "--from", "staging")
    assert empty.returncode == 2 and "staging serves nothing" in empty.stderr, empty.stderr
    staged: Any = project.json("deploy", "--env", "staging")
    project.commit("v2")  # HEAD moves on: --from must not build it
    plan: Any = project.json("deploy", "--env", "prod", "--from", "staging", "--plan")
    assert plan["release"] == staged["release"] and plan["build"] is False
    assert plan["promotion"]["from"] == "staging" and plan["promotion"]["refused"] is None
    assert "port" in plan["promotion"]["config_differs"] and "env.GREETING" in plan["promotion"]["config_differs"]
    res: Any = project.json("deploy", "--env", "prod", "--from", "staging")
    assert res["outcome"] == "succeeded" and res["release"] == staged["release"]
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", prod, timeout=10)
    conn.request("GET", "/")
    body = json.loads(conn.getresponse().read())
    assert body["version"] == "v1" and body["greeting"] == "prod hello", "prod's own configuration"
    bad = project.cli("deploy", "--env", "prod", "--from", "nowhere")
    assert bad.returncode == 2 and "unknown environment 'nowhere'" in bad.stderr


def test_a_promotion_from_an_unknown_environment_is_exit_2(project: Project) -> None:
    _two_envs(project, '\n[environments.prod.promotion]\nfrom = "stagin"\n')
    project.commit("v1")
    proc = project.cli("up", "--detach")
    assert proc.returncode == 2 and "environments.prod.promotion.from" in proc.stderr, proc.stderr
