"""The release command (migrations) and hooks: typed steps of the plan, run with the environment's
configuration against a real PostgreSQL, before the new release takes traffic."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from traffic import Traffic

from .conftest import Project

MIGRATE = """set -e
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q \\
  -c "CREATE TABLE IF NOT EXISTS migrations (release text, at double precision)" \\
  -c "INSERT INTO migrations VALUES ('$SHIPYARD_RELEASE', extract(epoch from clock_timestamp()))"
"""
FAILING = 'psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "SELECT no_such_function()"\n'


def _rows(url: str) -> list[tuple[str, float]]:
    out = subprocess.run(["psql", url, "-At", "-F", "|", "-c", "SELECT release, at FROM migrations ORDER BY at"],
                         capture_output=True, text=True, check=True).stdout
    return [(r.split("|")[0], float(r.split("|")[1])) for r in out.splitlines() if r]


def _spec(project: Project, release: str) -> None:
    """The spec runs ``sh migrate.sh`` as its release command; ``release`` is that script."""
    (project.dir / "migrate.sh").write_text(release)
    project.write_spec(replicas=2)
    spec = project.dir / "shipyard.toml"
    text = spec.read_text().replace('shared = ["instance"]\n', 'shared = ["instance"]\nrelease = "sh migrate.sh"\n')
    spec.write_text(text + '\n[hooks]\npre_deploy = "shipyard status --env staging --json > pre_deploy.json"\n'
                    'post_deploy = "env | grep ^SHIPYARD_ | sort > post_deploy.env"\n')


@pytest.mark.postgres
def test_the_migration_runs_once_before_the_new_release_takes_traffic(project: Project, pg_database: str) -> None:
    _spec(project, MIGRATE)
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    project.ok("secrets", "set", "--env", "staging", f"DATABASE_URL={pg_database}")
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    project.commit("v2")
    plan: Any = project.json("deploy", "--env", "staging", "--plan")
    kinds = [s["kind"] for s in plan["steps"]]
    assert kinds[:3] == ["build", "release_command", "hook"] and kinds[-1] == "hook", kinds
    offset = time.time() - time.monotonic()
    with Traffic(project.port, rate=200, connections=8) as traffic:
        res: Any = project.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded", res
    assert traffic.counts.failed == 0 and traffic.counts.sent > 100, traffic.counts.summary()
    rows = _rows(pg_database)
    assert [r for r, _ in rows] == [*(r for r, _ in rows[:1]), res["release"]], "once per deploy"
    first_v2 = traffic.counts.first_seen["v2"] + offset
    assert rows[-1][1] < first_v2, "the migration finished before the new release answered a request"
    # Hooks ran in the release, with the documented variables; one called `shipyard status` without deadlocking.
    release_dir = project.dir / ".shipyard" / "workdirs" / "staging" / res["release"]  # where its instances run
    variables = dict(line.split("=", 1) for line in (release_dir / "post_deploy.env").read_text().splitlines())
    assert variables["SHIPYARD_RELEASE"] == res["release"] and variables["SHIPYARD_ENV"] == "staging"
    assert variables["SHIPYARD_PREVIOUS_RELEASE"] == res["previous_release"]
    assert variables["SHIPYARD_STRATEGY"] == "blue-green" and variables["SHIPYARD_DEPLOYMENT"] == str(res["deployment"])
    assert "SHIPYARD_PERFORMER" in variables
    assert '"release"' in (release_dir / "pre_deploy.json").read_text()


@pytest.mark.postgres
def test_a_failing_migration_leaves_the_old_release_serving(project: Project, pg_database: str) -> None:
    _spec(project, FAILING)
    project.commit("v1")
    project.ok("up", "--detach", timeout=90)
    project.ok("secrets", "set", "--env", "staging", f"DATABASE_URL={pg_database}")
    first: Any = project.json("deploy", "--env", "staging", code=1)
    assert "no_such_function" in first["reason"], first["reason"]
    _spec(project, "true\n")
    project.commit("v1-fixed")
    assert project.json("deploy", "--env", "staging")["outcome"] == "succeeded"  # type: ignore[index]
    _spec(project, FAILING)
    project.commit("v2")
    with Traffic(project.port, rate=200, connections=8) as traffic:
        res: Any = project.json("deploy", "--env", "staging", code=1)
        time.sleep(0.3)
    assert res["outcome"] == "failed"
    assert traffic.counts.failed == 0 and traffic.counts.versions["v2"] == 0, traffic.counts.summary()
    hist: Any = project.json("history", "--env", "staging")
    assert "release command" in hist[0]["reason"] and "no_such_function" in hist[0]["reason"]
    assert project.get("/")[1]["version"] == "v1-fixed"
