"""Router kill: how long a project is unreachable when its router is SIGKILLed, and what clients see.

    .venv/bin/python bench/router_restart.py [--rate 200] [--trials 5]

A project deployed through the real CLI (`up --detach`, `deploy`), examples/traffic.py sending `--rate`
requests/s over keep-alive connections. Each trial SIGKILLs the router process (pid from
.shipyard/run/router.json); the control plane notices through a pidfd, starts a new router and sends every
table again (control/routerlink.py: keep_running). Measured per trial: the time from the kill to the first
200 on a fresh connection (probed every 2 ms), to the new router's pid being recorded, and the traffic's
failed requests during the trial, by kind (refused connections, resets, ...).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from sandbox import Project, make_project, wait_for  # noqa: E402
from traffic import Traffic  # noqa: E402


def router_pid(p: Project) -> int | None:
    try:
        return int(json.loads((p.dir / ".shipyard" / "run" / "router.json").read_text())["pid"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def serves(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def trial(p: Project, traffic: Traffic) -> dict[str, object]:
    old = router_pid(p)
    assert old is not None and serves(p.port), "not serving before the kill"
    before = traffic.counts.failed, Counter(traffic.counts.errors), traffic.counts.sent
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    while serves(p.port):  # the kill lands within a moment; answers until then come from the old router
        if time.monotonic() - t0 > 5:
            break
    back = None
    while time.monotonic() - t0 < 60:
        if serves(p.port):
            back = time.monotonic() - t0
            break
        time.sleep(0.002)
    new = None
    if wait_for(lambda: router_pid(p) not in (None, old), timeout=30, interval=0.002):
        new = router_pid(p)
    # Let requests in flight at the kill time out or fail before counting.
    time.sleep(2.0)
    failed = traffic.counts.failed - before[0]
    errors = Counter(traffic.counts.errors) - before[1]
    return {"serving_again_s": back, "new_pid": new, "failed": failed, "errors": dict(errors),
            "sent": traffic.counts.sent - before[2]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-"))
    p = make_project(tmp)
    p.write_spec(replicas=2, interval="0.2s")
    p.commit("v1")
    print(f"# router_restart  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  "
          f"{os.cpu_count()} cpus  python {platform.python_version()}  {args.rate:g} req/s")
    try:
        p.ok("up", "--detach", timeout=90)
        p.ok("deploy", "--env", "staging", timeout=180)
        results = []
        with Traffic(p.port, rate=args.rate, connections=args.connections, timeout=5) as traffic:
            time.sleep(1.0)  # steady state before the first kill
            for i in range(args.trials):
                r = trial(p, traffic)
                results.append(r)
                back = r["serving_again_s"]
                print(f"trial {i + 1}: serving again after {back * 1000:.0f} ms, "
                      f"{r['failed']} of {r['sent']} requests failed {r['errors']}" if back is not None
                      else f"trial {i + 1}: not serving again within 60 s", flush=True)
        backs = [float(r["serving_again_s"]) * 1000 for r in results if r["serving_again_s"] is not None]
        fails = [int(str(r["failed"])) for r in results]
        if backs:
            print(f"serving again: median {statistics.median(backs):.0f} ms, max {max(backs):.0f} ms; "
                  f"failed requests per kill: median {statistics.median(fails):g}, max {max(fails)} "
                  f"at {args.rate:g} req/s; total {traffic.counts.summary()}")
        history = p.json("history", "--env", "staging")
        restores = [h for h in history if isinstance(h, dict) and h.get("kind") == "restore"] \
            if isinstance(history, list) else []
        print(f"restores recorded in history: {len(restores)}")
    finally:
        if p.control_pid():
            p.cli("down", timeout=120)
        p.kill_everything()


if __name__ == "__main__":
    main()
