"""How fast a bad canary is caught and rolled back, and that healthy canaries are not.

    .venv/bin/python bench/canary_detection.py [--rate 1000] [--healthy-runs 20] [--healthy-rate 200]

Spec: the issue's, as written — replicas 3, ``canary = { steps = [10, 50, 100], step_duration = "20s" }``
and its ``[rollback]`` table. Stable serves at ``--rate`` req/s (keep-alive, open loop); a canary at 10%
is given, in turn, (a) 5% errors, (b) +300 ms latency, (c) instances that crash 3 s after starting.
For each it prints the time from the canary's first answer to its last (after which 100% is back on
stable), the failing condition, and the failed requests answered by stable or by nobody (must be 0).
Then ``--healthy-runs`` healthy canaries in a row at ``--healthy-rate`` req/s: how many were promoted,
and the failed requests during their whole rollouts (must be 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from sandbox import Project, make_project  # noqa: E402
from traffic import Traffic  # noqa: E402

ISSUE_SPEC = """strategy = "canary"
canary = {{ steps = [10, 50, 100], step_duration = "{step}" }}

[environments.staging.rollback]
error_rate = {{ above = "5%", for = "5m" }}
p95 = {{ above = "2s", for = "3m" }}
cpu = {{ above = "90%", for = "5m" }}
memory = {{ above = "95%", for = "3m" }}
health_failures = 3
"""

CASES = {
    "5% errors": {"FAULT_ERROR_RATE": "0.05"},
    "+300 ms latency": {"FAULT_LATENCY_MS": "300"},
    "crash loop": {"FAULT_CRASH_AFTER_S": "3"},
}


def set_faults(p: Project, faults: dict[str, str]) -> None:
    spec = p.dir / "shipyard.toml"
    text = spec.read_text()
    head, sep, rest = text.partition('GREETING = "hello"\n')
    rest = "".join(line for line in rest.splitlines(keepends=True) if not line.startswith("FAULT_"))
    spec.write_text(head + sep + "".join(f'{k} = "{v}"\n' for k, v in faults.items()) + rest)


def failing_of(res: dict[str, Any]) -> str:
    canary = (res.get("rollback") or {}).get("canary") or {}
    return "; ".join(f["condition"] for f in canary.get("failing", [])) or str(res.get("reason"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--healthy-runs", type=int, default=20)
    ap.add_argument("--healthy-rate", type=float, default=200)
    ap.add_argument("--step", default="20s", help="step_duration (the issue's is 20s)")
    ap.add_argument("--only", choices=["faults", "healthy"], default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="shipyard-bench-canary-"))
    p = make_project(tmp)
    p.write_spec(replicas=3, interval="0.2s", extra=ISSUE_SPEC.format(step=args.step))
    p.commit("v1")
    print(f"# canary_detection  {time.strftime('%Y-%m-%d %H:%M')}  {platform.node()}  {os.cpu_count()} cpus  "
          f"python {platform.python_version()}  step_duration {args.step}")
    version = 1
    try:
        p.ok("up", "--detach")
        first: Any = p.json("deploy", "--env", "staging")
        assert first["outcome"] == "succeeded", first
        if args.only != "healthy":
            print(f"bad canaries at 10% with stable at {args.rate:.0f} req/s over {args.connections} connections:")
            for name, faults in CASES.items():
                version += 1
                tag = f"v{version}"
                set_faults(p, faults)
                p.commit(tag)
                with Traffic(p.port, rate=args.rate, connections=args.connections) as traffic:
                    time.sleep(2)
                    t0 = time.monotonic()
                    proc = p.cli("deploy", "--env", "staging", "--json", timeout=600)
                    wall = time.monotonic() - t0
                    time.sleep(1)
                import json

                res = json.loads(proc.stdout)
                c = traffic.counts
                seen = c.last_seen.get(tag, 0.0) - c.first_seen.get(tag, 0.0) if tag in c.first_seen else None
                stable_failed = c.failed_versions.get("v1", 0) + c.failed_versions.get("?", 0) + sum(c.errors.values())
                achieved = c.sent / max(1e-9, wall + 3)
                shown = f"{seen:5.1f}s" if seen is not None else "  n/a"
                print(f"  {name:<16} {res['outcome']:<11} canary first→last answer {shown}  "
                      f"deploy wall {wall:5.1f}s  failing: {failing_of(res)}")
                print(f"  {'':<16} requests {c.sent} (~{achieved:.0f}/s)  canary answered {c.versions.get(tag, 0)} ok + "
                      f"{c.failed_versions.get(tag, 0)} 5xx  failed on stable or unanswered: {stable_failed}")
            set_faults(p, {})
        if args.only != "faults":
            promoted, durations, failed, sent = 0, [], 0, 0
            print(f"healthy canaries: {args.healthy_runs} in a row at {args.healthy_rate:.0f} req/s")
            for _ in range(args.healthy_runs):
                version += 1
                p.commit(f"v{version}")
                with Traffic(p.port, rate=args.healthy_rate, connections=8) as traffic:
                    t0 = time.monotonic()
                    proc = p.cli("deploy", "--env", "staging", "--json", timeout=900)
                    durations.append(time.monotonic() - t0)
                import json

                res = json.loads(proc.stdout)
                promoted += res["outcome"] == "succeeded"
                if res["outcome"] != "succeeded":
                    print(f"  run v{version}: {res['outcome']}: {failing_of(res)}")
                failed += traffic.counts.failed
                sent += traffic.counts.sent
            print(f"  promoted {promoted} of {args.healthy_runs}; rollout median {statistics.median(durations):.1f}s; "
                  f"requests {sent}, failed {failed}")
    finally:
        p.cli("down")
        p.kill_everything()


if __name__ == "__main__":
    main()
