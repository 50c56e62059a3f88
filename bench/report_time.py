"""How long ``shipyard report --period 7d`` takes to build: 7 days of minute history, deploys, alerts.

    .venv/bin/python bench/report_time.py [--releases 2] [--deploys 50] [--repeat 3]

Fills a real SQLite state database with 7 days of minute points for one environment (every minute,
``--releases`` releases), ``--deploys`` deployments with their audit rows, alert events and incidents,
then times ``ReportService.build`` (facts + pure report + HTML). The reference, measured in the same run,
is reading the same 7 days of minute points alone (``store.read_points``): the ratio says what the
report adds over the read it cannot avoid. The goal is ≤ 5 s.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from shipyard.control.reports import ReportService  # noqa: E402
from shipyard.primitives.clock import ManualClock  # noqa: E402
from shipyard.primitives.spec.loading import parse_spec  # noqa: E402
from shipyard.primitives.store import open_store  # noqa: E402

NOW = 1_780_000_000.0
WEEK = 7 * 86400


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--releases", type=int, default=2)
    ap.add_argument("--deploys", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(None, Path(tmp) / ".shipyard")
        start = int(NOW - WEEK) // 60 * 60
        points = []
        for t in range(start, int(NOW), 60):
            for r in range(args.releases):
                req = rng.randint(500, 1500)
                points.append({"env": "prod", "release": f"r{r}", "t": t, "requests": req,
                               "errors": rng.randint(0, 3), "p50": 0.02, "p95": 0.09 + rng.random() * 0.05,
                               "p99": 0.2, "cpu": 0.3, "rss": 100_000_000, "memory": 0.2, "up": 2, "restarts": 0,
                               "instances": 2, "health_failures": 0})
        for i in range(0, len(points), 5000):
            store.write_points("minute", points[i:i + 5000])
        for k in range(args.deploys):
            at = NOW - WEEK + k * WEEK / args.deploys
            dep = store.begin_deployment("prod", kind="deploy", release=f"r{k}", previous_release=None,
                                         strategy="canary", plan=[], started_at=at)
            store.finish_deployment(dep.id, outcome="rolled_back" if k % 10 == 0 else "succeeded", finished_at=at + 90,
                                    reason="error_rate > 2%" if k % 10 == 0 else None)
            store.add_audit(at, "alice", "deploy", "prod", f"deployment {dep.id}")
        for k in range(200):
            store.add_event("prod", "alert_firing", "HighErrorRate firing", data={"alertname": "HighErrorRate",
                            "severity": "critical"}, at=NOW - k * 3000)
        spec = parse_spec({"app": {"name": "svc", "run": "python3 app.py", "health": {"path": "/health"}},
                           "environments": {"prod": {"port": 8000}}}, Path(tmp) / "shipyard.toml")
        service = ReportService(store=store, clock=ManualClock(NOW), out=Path(tmp) / "reports")
        reads, builds = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = len(store.read_points("minute", "prod", NOW - WEEK))
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = service.build(spec, "prod", "7d")
            builds.append(time.perf_counter() - t0)
        store.close()
    best_read, best_build = min(reads), min(builds)
    print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
    print(f"minute points: {n} ({args.releases} releases x 7 days), deploys: {args.deploys}, "
          f"html: {len(out['html']) // 1024} KiB")
    print(f"reference (read the 7 days of minute points): {best_read:.3f} s")
    print(f"report 7d (facts + build + HTML):            {best_build:.3f} s  "
          f"({best_build / best_read:.2f}x the read; goal <= 5 s: {'met' if best_build <= 5 else 'MISSED'})")


if __name__ == "__main__":
    main()
