"""Bad process, resource and job settings: exit 2, one line per problem with its key path."""

from __future__ import annotations

from .conftest import Project

BAD = """
[environments.staging.processes.wroker]
replicas = 2

[environments.staging.resources]
web = { memory = "512Mi", cpu = "0.5" }
beat = { memory = "64Mi" }

[jobs.nightly]
schedule = "0 25 * * *"
command = "true"
concurrency = "sometimes"
envs = ["staging"]
"""


def test_unknown_process_types_bad_cron_and_concurrency_exit_2_with_their_key_paths(project: Project) -> None:
    project.write_spec(replicas=1, extra=BAD)
    res = project.cli("deploy", "--env", "staging", "--plan")
    assert res.returncode == 2, (res.stdout, res.stderr)
    err = res.stderr
    assert "environments.staging.processes.wroker: unknown process type 'wroker' (known: web)" in err, err
    assert "environments.staging.resources.beat: unknown process type 'beat'" in err, err
    assert "jobs.nightly.schedule: expected a cron expression" in err, err
    assert "jobs.nightly.concurrency" in err and "sometimes" in err, err
    assert "Traceback" not in err
