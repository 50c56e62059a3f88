"""Zero-downtime deploys at 1,000 requests/s, warm rollback time, and shipyard's own deploy overhead.

    .venv/bin/python bench/zero_downtime.py [--rate 1000] [--replicas 3]

Prints, for a blue-green deploy, a warm rollback and a rolling deploy under constant load, the
requests sent and failed (connection errors and 5xx); the median of 5 warm rollbacks (as measured by
the control plane and as seen from the CLI); and the overhead of a blue-green deploy of 3 instances:
wall time minus the app's own time to become ready (measured in the same run by starting the app
directly and polling /ready every 5 ms).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from sandbox import Project, free_port, make_project  # noqa: E402
from traffic import Traffic  # noqa: E402


def app_ready_time(project: Project, samples: int = 5) -> float:
    """Median time for examples/app.py to answer /ready when started directly (no shipyard)."""
    times = []
    for _ in range(samples):
        port = free_port()
        env = {**os.environ, "PORT": str(port), "GREETING": "hello"}
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=project.dir, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                    conn.request("GET", "/ready")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.005)
            times.append(time.monotonic() - t0)
        finally:
            proc.terminate()
            proc.wait()
    return statistics.median(times)


def timed(project: Project, *args: str) -> tuple[dict[str, object], float]:
    t0 = time.monotonic()
    proc = project.cli(*args, "--json")
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"shipyard {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    p = make_project(tmp)
    p.write_spec(replicas=args.replicas, interval="0.1s")
    p.commit("v1")
    print(f"# zero_downtime  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  "
          f"{os.cpu_count()} cpus  python {platform.python_version()}")
    try:
        p.ok("up", "--detach")
        timed(p, "deploy", "--env", "staging")
        p.commit("v2")
        phases = {}
        with Traffic(p.port, rate=args.rate, connections=args.connections) as traffic:
            time.sleep(2)
            for name, cmd in (("blue-green deploy", ("deploy", "--env", "staging")),
                              ("warm rollback", ("rollback", "--env", "staging")),
                              ("rolling deploy", ("deploy", "--env", "staging", "--strategy", "rolling",
                                                  "--ref", "HEAD"))):
                before_sent, before_failed = traffic.counts.sent, traffic.counts.failed
                t0 = time.monotonic()
                res, _ = timed(p, *cmd)
                time.sleep(1)
                phases[name] = (traffic.counts.sent - before_sent, traffic.counts.failed - before_failed,
                                res["outcome"], time.monotonic() - t0)
        c = traffic.counts
        achieved = c.sent / max(1e-9, sum(v[3] for v in phases.values()) + 2)
        print(f"load: {args.rate:.0f} req/s requested over {args.connections} keep-alive connections "
              f"(~{achieved:.0f} achieved)")
        for name, (sent, failed, outcome, took) in phases.items():
            print(f"  {name:<18} {outcome:<10} {took:5.1f}s  requests {sent:>7}  failed {failed}")
        print(f"  total              requests {c.sent}  failed {c.failed}  errors {dict(c.errors)}  "
              f"statuses {dict(c.statuses)}")

        server, wall = [], []
        for _ in range(5):
            res, w = timed(p, "rollback", "--env", "staging")
            assert res["outcome"] == "succeeded", res
            server.append(float(res["duration_s"]))  # type: ignore[arg-type]
            wall.append(w)
        print(f"warm rollback: median {statistics.median(server) * 1000:.0f} ms in the control plane, "
              f"{statistics.median(wall) * 1000:.0f} ms wall from the CLI (includes Python start-up); "
              f"runs {[round(s * 1000) for s in server]}")

        ready = app_ready_time(p)
        overheads = []
        for i in range(3):
            p.commit(f"v{3 + i}")
            res, w = timed(p, "deploy", "--env", "staging", "--strategy", "blue-green")
            overheads.append((w, float(res["duration_s"])))  # type: ignore[arg-type]
        w_med = statistics.median(o[0] for o in overheads)
        s_med = statistics.median(o[1] for o in overheads)
        print(f"blue-green deploy of {args.replicas} instances (new commit, build included): wall {w_med:.2f}s, "
              f"control plane {s_med:.2f}s; app's own time to ready {ready:.2f}s → overhead "
              f"{w_med - ready:.2f}s wall ({s_med - ready:.2f}s in the control plane)")
    finally:
        p.cli("down")
        p.kill_everything()


if __name__ == "__main__":
    main()
