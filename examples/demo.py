"""`make demo`: shipyard's main path on this machine, start to finish, in a throwaway git repo.

up → deploy v1 → blue-green to v2 under steady load → rollback (a warm router switch) → a canary of a
bad v3 (20% of its answers are errors) rolled back by itself within seconds → status and history → down.
Prints what happened and the load's failure count on the serving release (it should be 0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from traffic import Counts, Traffic  # noqa: E402

SPEC = """\
[app]
name = "svc"
run = "python3 app.py"          # started with PORT set; any command works (gunicorn, uvicorn, a binary)
build = ["python3 -m compileall -q ."]   # optional, run inside the new release
shared = ["instance"]           # optional: dirs kept across releases, linked into each one

[app.health]
path = "/health"
interval = "1s"
timeout = "1s"
retries = 3
start_period = "10s"

[app.ready]
path = "/ready"

[defaults]
replicas = 2
strategy = "blue-green"
keep_releases = 5

[defaults.env]
GREETING = "hello"

[environments.staging]
port = {port}
replicas = 3
# Used by `deploy --strategy canary` (or strategy = "canary"): 10% → 50% → 100%, judged against stable.
canary = {{ steps = [10, 50, 100], step_duration = "5s", min_samples = 50 }}
"""


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main() -> int:
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="shipyard-demo-"))
    repo = work / "svc"
    repo.mkdir()
    port = 8200 if port_free(8200) else next(p for p in range(8201, 8300) if port_free(p))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=repo, env=env, text=True, capture_output=True, check=check)

    def shipyard(*args: str) -> int:
        print(f"\n$ shipyard {' '.join(args)}", flush=True)
        proc = subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=repo, env=env, text=True)
        return proc.returncode

    shutil.copy(HERE / "app.py", repo / "app.py")
    (repo / "shipyard.toml").write_text(SPEC.format(port=port))
    (repo / ".gitignore").write_text(".shipyard/\ninstance/\n__pycache__/\n")
    (repo / "VERSION").write_text("v1\n")
    sh("git", "init", "-q", "-b", "main")
    sh("git", "-c", "user.email=demo@example.com", "-c", "user.name=Demo", "add", "-A")
    sh("git", "-c", "user.email=demo@example.com", "-c", "user.name=Demo", "commit", "-q", "-m", "v1")
    print(f"demo project: {repo} (staging on http://127.0.0.1:{port})")
    failures = 0
    counts = Counts()
    try:
        failures += shipyard("up", "--detach") != 0
        failures += shipyard("deploy", "--env", "staging") != 0
        (repo / "VERSION").write_text("v2\n")
        sh("git", "-c", "user.email=demo@example.com", "-c", "user.name=Demo", "commit", "-qam", "v2")
        print("\n-- steady load: 200 requests/s on the staging port while we deploy and roll back --")
        with Traffic(port, rate=200, connections=8) as traffic:
            time.sleep(1)
            failures += shipyard("deploy", "--env", "staging", "--plan") != 0
            failures += shipyard("deploy", "--env", "staging") != 0
            time.sleep(1)
            t0 = time.monotonic()
            failures += shipyard("rollback", "--env", "staging") != 0
            print(f"(rollback command took {time.monotonic() - t0:.2f}s including CLI start-up)")
            time.sleep(1)
        counts = traffic.counts
        print(f"\nload during deploy + rollback: {counts.summary()}")
        if counts.errors:
            print(f"  errors: {dict(counts.errors)}")
        # A bad release: its instances answer 20% of requests with 500 (set in its environment only).
        (repo / "VERSION").write_text("v3\n")
        sh("git", "-c", "user.email=demo@example.com", "-c", "user.name=Demo", "commit", "-qam", "v3")
        spec = (repo / "shipyard.toml").read_text()
        (repo / "shipyard.toml").write_text(spec.replace('GREETING = "hello"', 'GREETING = "hello"\n'
                                                         'FAULT_ERROR_RATE = "0.2"'))
        print("\n-- a canary of a bad v3 under the same load: it should roll itself back (exit 1) --")
        with Traffic(port, rate=200, connections=8) as bad:
            time.sleep(1)
            failures += shipyard("deploy", "--env", "staging", "--strategy", "canary") != 1
            time.sleep(1)
        (repo / "shipyard.toml").write_text(spec)
        c = bad.counts
        on_stable = c.failed - c.failed_versions.get("v3", 0)
        print(f"load during the canary: {c.summary()}; v3 answered {c.failed_versions.get('v3', 0)} errors "
              f"before it was rolled back; failed on the serving release: {on_stable}")
        counts.sent += c.sent
        counts.failed += on_stable
        failures += shipyard("status", "--env", "staging") != 0
        failures += shipyard("history", "--env", "staging") != 0
        failures += shipyard("releases") != 0
    finally:
        shipyard("down")
    took = time.monotonic() - t_start
    ok = failures == 0 and counts.failed == 0
    print(f"\ndemo {'finished' if ok else 'FAILED'} in {took:.0f}s; "
          f"{counts.failed} failed requests of {counts.sent}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
