"""`make bench`: every benchmark in turn; each prints its own figures (copy them into docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["zero_downtime.py"],
    ["router_throughput.py"],
    ["router_throughput.py", "--no-access-log"],
    ["router_hotpath.py"],
    ["router_latency.py"],
    ["router_memory.py"],
    ["router_streaming.py"],
    ["verify_capacity.py"],
    ["verify_accuracy.py"],
    ["backup.py", "--scale", "50"],
    ["canary_detection.py"],
    ["router_restart.py"],
    ["build_cache.py"],
]


def main() -> int:
    failed = 0
    for args in SCRIPTS:
        print(f"\n=== {' '.join(args)} ===", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], cwd=HERE).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
