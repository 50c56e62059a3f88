"""A failed deploy says why: a crash's exit code and last output lines, a failing health check's answers
and restarts — in the human output and --json — and `shipyard logs --deployment N` shows its instances."""

from __future__ import annotations

from typing import Any

from .conftest import Project

FAST_HEALTH = {'start_period = "10s"': 'start_period = "1s"', '[app.ready]\npath = "/ready"\n': "",
               # No build: the release starts as committed (a compile step would catch a syntax error first).
               'build = ["python3 -m compileall -q ."]\n': ""}


def _spec(project: Project, extra: str = "") -> None:
    project.write_spec(replicas=1, deploy_timeout="60s", extra=extra)
    spec = project.dir / "shipyard.toml"
    text = spec.read_text()
    for old, new in FAST_HEALTH.items():
        text = text.replace(old, new)
    spec.write_text(text)


def _first(project: Project) -> Any:
    _spec(project)
    project.commit("v1-spec")
    project.ok("up", "--detach", timeout=90)
    res: Any = project.json("deploy", "--env", "staging")
    assert res["outcome"] == "succeeded", res
    return res


def test_a_syntax_error_is_in_the_reason_and_the_logs(project: Project) -> None:
    _first(project)
    app = (project.dir / "app.py").read_text()
    project.commit("v2", files={"app.py": app + "\ndef broken(:\n    pass\n"})
    res: Any = project.json("deploy", "--env", "staging", code=1)
    assert res["outcome"] == "failed"
    assert "SyntaxError" in res["reason"] and "exited with code 1" in res["reason"], res["reason"]
    assert "within" not in res["reason"].splitlines()[0], "it gave up on a crash loop, not at the timeout"
    assert project.get("/")[1]["version"] == "v1-spec", "the old release serves"
    human = project.cli("history", "--env", "staging")
    assert "SyntaxError" in human.stdout, human.stdout
    logs = project.cli("logs", "--env", "staging", "--deployment", str(res["deployment"]))
    assert logs.returncode == 0 and "SyntaxError" in logs.stdout, logs.stdout + logs.stderr


def test_a_never_healthy_release_says_what_the_probe_answered(project: Project) -> None:
    _first(project)
    _spec(project, extra='\n[environments.staging.env]\nFAULT_HEALTH_FAIL = "503"\n')
    project.commit("v2")
    proc = project.cli("deploy", "--env", "staging")
    assert proc.returncode == 1
    assert "503 ×3, restarted 3×" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    res: Any = project.json("history", "--env", "staging")
    assert "503 ×3, restarted 3×" in res[0]["reason"], res[0]["reason"]
    assert project.get("/")[1]["version"] == "v1-spec"
