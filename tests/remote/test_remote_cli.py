"""The CLI driving a control plane over TLS from a directory without the project (docs: README "Remote use")."""

from __future__ import annotations

import http.client
import json
import os
import pty
import select
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

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
    follower = subprocess.Popen([sys.executable, "-m", "shipyard", "logs", "--env", "staging", "-f", "-n", "1",
                                 "--json"], cwd=remote.cwd, env=remote.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        # Its one line of history: the control plane follows the instances running now (from before that line).
        newest = json.loads(follower.stdout.readline())
        assert "listening on" in newest["line"], newest
        # A line written into that instance's log now (as its output would be) reaches the remote follower.
        log = proj.dir / ".shipyard" / "logs" / "staging" / f"{newest['instance']}.log"
        with log.open("a") as out:
            out.write("written after the follower started\n")
        seen = ""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "written after the follower started" not in seen:
            ready, _, _ = select.select([follower.stdout], [], [], 0.5)
            if ready:
                seen += follower.stdout.readline()
        assert [json.loads(x) for x in seen.splitlines()][-1] == {
            "instance": newest["instance"], "line": "written after the follower started"}, seen
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


def test_run_interactive_gets_a_terminal_there(served: tuple[Project, RemoteCli, str]) -> None:
    """-i over SHIPYARD_URL: the program runs on the control plane's machine under a pseudo-terminal."""
    proj, remote, token = served
    if not remote.json("status", "--env", "staging")["release"]:  # type: ignore[index]
        remote.ok("deploy", "--env", "staging")
    code = ("import os, sys; print('tty=' + str(sys.stdin.isatty() and sys.stdout.isatty())); "
            "print('cwd=' + os.getcwd()); print('hi ' + input('name? ')); sys.exit(5)")
    text, status = _under_a_terminal(remote, code, b"name?", b"remote-user\n")
    assert "tty=True" in text and "hi remote-user" in text, text
    assert f"cwd={proj.dir}/.shipyard/workdirs/staging/" in text, "it ran on the control plane's side"
    assert status == 5
    # Ctrl-C typed here is the program's SIGINT there: its terminal is its controlling one.
    started = time.monotonic()
    text, status = _under_a_terminal(remote, "import time; print('ready', flush=True); time.sleep(60)",
                                     b"ready", b"\x03")
    assert "KeyboardInterrupt" in text and status == 128 + 2 and time.monotonic() - started < 20, (status, text)
    # A program that leaves something in the background holding the terminal still ends the session.
    started = time.monotonic()
    text, status = _under_a_terminal(remote, "import subprocess, sys; subprocess.Popen(['sleep', '30']); "
                                     "print('left', flush=True); sys.exit(4)", b"", b"")
    assert status == 4 and "left" in text and time.monotonic() - started < 20, (status, text)
    runs = [e for e in remote.json("events", "--env", "staging")["events"]  # type: ignore[index]
            if e["kind"] == "run"]
    assert [r["data"]["exit_code"] for r in runs][-3:] == [5, -2, 4], runs  # -2: killed by SIGINT
    # The hand-over a local -i gets (the environment itself) is never given to a remote caller.
    conn = http.client.HTTPSConnection("127.0.0.1", int(remote.env["SHIPYARD_URL"].rsplit(":", 1)[1]),
                                       context=ssl.create_default_context(cafile=remote.env["SHIPYARD_CA"]))
    conn.request("POST", "/v1/run", json.dumps({"env": "staging", "argv": ["true"], "interactive": True}),
                 {"Authorization": f"Bearer {token}"})
    answer = json.loads(conn.getresponse().read())
    assert answer["exit_code"] == 3 and "never the environment" in answer["error"], answer


def test_refusals(served: tuple[Project, RemoteCli, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    proj, remote, token = served
    wrong, _ = make_cert(tmp_path / "other", "other")
    bad_ca = remote.cli("status", SHIPYARD_CA=str(wrong))
    assert bad_ca.returncode == 2 and "TLS: cannot verify the certificate" in bad_ca.stderr, bad_ca.stderr
    assert "SHIPYARD_CA" in bad_ca.stderr and "Traceback" not in bad_ca.stderr
    no_ca = remote.cli("status", SHIPYARD_CA=None)  # the system's CAs do not know a self-signed certificate
    assert no_ca.returncode == 2 and "TLS" in no_ca.stderr
    # Or the certificate pinned by its SHA-256 (checked before the token is sent).
    served_cert = Path(remote.env["SHIPYARD_CA"]).read_text()
    pinned = remote.cli("status", "--json", SHIPYARD_CA="sha256:" + _fingerprint(served_cert))
    assert pinned.returncode == 0 and json.loads(pinned.stdout), pinned.stderr
    other = remote.cli("status", SHIPYARD_CA="sha256:" + _fingerprint(wrong.read_text()))
    assert other.returncode == 2 and "is not the one SHIPYARD_CA pins" in other.stderr, other.stderr

    clear = remote.cli("status", SHIPYARD_URL="http://192.0.2.10:7420")
    assert clear.returncode == 2 and "in clear" in clear.stderr and "https://" in clear.stderr
    # HTTP 401 is exit 4, for a call and for a stream alike.
    no_token = remote.cli("history", "--env", "staging", SHIPYARD_TOKEN=None)
    assert no_token.returncode == 4 and "refused the token" in no_token.stderr, no_token.stderr
    wrong = remote.cli("deploy", "--env", "staging", SHIPYARD_TOKEN="not-the-token")
    assert wrong.returncode == 4 and "refused the token" in wrong.stderr, wrong.stderr

    local_only = remote.cli("secrets", "list", "--env", "staging")
    assert local_only.returncode == 2 and "needs the project directory" in local_only.stderr, local_only.stderr
    unknown = remote.cli("status", "--env", "nope")
    assert unknown.returncode == 2 and "unknown environment 'nope'" in unknown.stderr
    _no_token(remote, token, proj)


def _under_a_terminal(remote: RemoteCli, code: str, prompt: bytes, answer: bytes) -> tuple[str, int]:
    """``shipyard run -i`` under a pseudo-terminal here; ``answer`` typed once ``prompt`` shows."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI under a pseudo-terminal, away from the project
        os.chdir(remote.cwd)
        os.execve(sys.executable, [sys.executable, "-m", "shipyard", "run", "--env", "staging", "-i", "--",
                                   sys.executable, "-c", code], remote.env)
    out, sent = b"", False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if prompt in out and not sent:
            os.write(fd, answer)
            sent = True
    else:  # no end within the deadline: the CLI hangs; do not wait for it
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def _fingerprint(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex(":")


def _no_token(remote: RemoteCli, token: str, proj: Project) -> None:
    assert all(token not in out for out in remote.outputs), "the token was printed"
    assert token not in (proj.dir / ".shipyard" / "logs" / "control.log").read_text(errors="replace")
