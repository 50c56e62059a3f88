"""The CLI driving a control plane over TLS from a directory without the project (docs: README "Remote use")."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time

from .conftest import Project, RemoteCli, git, make_cert

PROBE = "import os, sys; print('greeting=' + os.environ['GREETING']); sys.exit(3)"


def test_deploy_status_history_logs_run_rollback_remotely(served: tuple[Project, RemoteCli, str]) -> None:
    proj, remote, token = served
    assert not list(remote.cwd.glob("shipyard.*")) and not (remote.cwd / ".shipyard").exists()
    live = remote.ok("deploy", "--env", "staging")
    # The live view: each step as it ends, then the outcome.
    assert "✓" in live.stdout and "deploy succeeded: staging now serves" in live.stdout, live.stdout
    first = remote.json("status", "--env", "staging")["release"]  # type: ignore[index]
    assert first and first in live.stdout

    proj.commit("v2")
    second = remote.json("deploy", "--env", "staging")
    assert second["outcome"] == "succeeded" and second["release"] != first  # type: ignore[index]
    hist = remote.json("history", "--env", "staging")
    assert [h["release"] for h in hist][:2] == [second["release"], first]  # type: ignore[index]

    logs = remote.ok("logs", "--env", "staging", "--lines", "5")
    assert "example app v2" in logs.stdout, logs.stdout

    run = remote.cli("run", "--env", "staging", "--", sys.executable, "-c", PROBE)
    assert run.returncode == 3 and "greeting=hello" in run.stdout, run.stdout + run.stderr

    back = remote.json("rollback", "--env", "staging")
    assert back["outcome"] == "succeeded" and back["release"] == first  # type: ignore[index]
    assert remote.json("status", "--env", "staging")["release"] == first  # type: ignore[index]
    assert not list(remote.cwd.glob("shipyard.*")), "nothing of the project was needed here"
    _no_token(remote, token, proj)


def test_logs_follow_streams_new_lines(served: tuple[Project, RemoteCli, str]) -> None:
    proj, remote, token = served
    if not remote.json("status", "--env", "staging")["release"]:  # type: ignore[index]
        remote.ok("deploy", "--env", "staging")
    follower = subprocess.Popen([sys.executable, "-m", "shipyard", "logs", "--env", "staging", "-f", "-n", "0",
                                 "--json"], cwd=remote.cwd, env=remote.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the follower has started (it follows the instances running now)
        proj.commit("v3")
        remote.ok("deploy", "--env", "staging")
        seen = ""
        deadline = time.monotonic() + 20
        assert follower.stdout is not None
        # The instance it follows writes its last line when the deploy stops it: streamed as it is written.
        while time.monotonic() < deadline and "stopped (drained)" not in seen:
            ready, _, _ = select.select([follower.stdout], [], [], 0.5)
            if ready:
                seen += follower.stdout.readline()
        assert "stopped (drained)" in seen, seen
        assert all("line" in json.loads(x) for x in seen.splitlines())
    finally:
        follower.kill()
        follower.wait(10)


def test_a_pushed_commit_is_fetched_by_the_control_plane(served: tuple[Project, RemoteCli, str]) -> None:
    """CI: the runner has the commit it tests, the control plane's checkout does not until it fetches it."""
    proj, remote, _ = served
    ci = remote.cwd / "checkout"
    git(remote.cwd, "clone", "-q", str(proj.dir.parent / "origin.git"), str(ci))
    git(ci, "config", "user.email", "ci@example.com")
    git(ci, "config", "user.name", "CI")
    (ci / "VERSION").write_text("pushed\n")
    git(ci, "commit", "-q", "-am", "pushed by CI")
    git(ci, "push", "-q", "origin", "HEAD:main")
    sha = git(ci, "rev-parse", "HEAD")
    done = remote.json("deploy", "--env", "staging", "--ref", sha)
    assert done["outcome"] == "succeeded" and done["release"].endswith(sha[:7])  # type: ignore[index]
    missing = remote.cli("deploy", "--env", "staging", "--ref", "0" * 40)
    assert missing.returncode == 2 and "nor fetched from origin" in missing.stderr, missing.stderr


def test_refusals(served: tuple[Project, RemoteCli, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    proj, remote, token = served
    wrong, _ = make_cert(tmp_path / "other", "other")
    bad_ca = remote.cli("status", SHIPYARD_CA=str(wrong))
    assert bad_ca.returncode == 2 and "TLS: cannot verify the certificate" in bad_ca.stderr, bad_ca.stderr
    assert "SHIPYARD_CA" in bad_ca.stderr and "Traceback" not in bad_ca.stderr
    no_ca = remote.cli("status", SHIPYARD_CA=None)  # the system's CAs do not know a self-signed certificate
    assert no_ca.returncode == 2 and "TLS" in no_ca.stderr

    clear = remote.cli("status", SHIPYARD_URL="http://192.0.2.10:7420")
    assert clear.returncode == 2 and "in clear" in clear.stderr and "https://" in clear.stderr
    garbage = remote.cli("status", SHIPYARD_URL="ftp://127.0.0.1:1")
    assert garbage.returncode == 2 and "SHIPYARD_URL" in garbage.stderr

    for case in ({"SHIPYARD_TOKEN": None}, {"SHIPYARD_TOKEN": "not-the-token"}):
        refused = remote.cli("history", "--env", "staging", **case)
        assert refused.returncode == 4 and "refused the token" in refused.stderr, refused.stderr
    deploy = remote.cli("deploy", "--env", "staging", SHIPYARD_TOKEN="not-the-token")
    assert deploy.returncode == 4, deploy.stderr

    local_only = remote.cli("secrets", "list", "--env", "staging")
    assert local_only.returncode == 2 and "needs the project directory" in local_only.stderr, local_only.stderr
    interactive = remote.cli("run", "--env", "staging", "-i", "--", "sh")
    assert interactive.returncode == 2 and "run -i" in interactive.stderr
    unknown = remote.cli("status", "--env", "nope")
    assert unknown.returncode == 2 and "unknown environment 'nope'" in unknown.stderr
    _no_token(remote, token, proj)


def _no_token(remote: RemoteCli, token: str, proj: Project) -> None:
    assert all(token not in out for out in remote.outputs), "the token was printed"
    assert token not in (proj.dir / ".shipyard" / "logs" / "control.log").read_text(errors="replace")
