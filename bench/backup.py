"""Backup benchmark: shipyard's encrypted backup of a pgbench database vs ``pg_dump -Fc | zstd`` alone,
plus the restore-drill RTO.

    .venv/bin/python bench/backup.py [--scale 50] [--jobs 1] [--runs 1]

Starts its own throwaway PostgreSQL cluster (initdb + pg_ctl on a free port), fills it with
``pgbench -i -s SCALE``, then times each side (best of --runs) and prints the figures and the ratio the
issue asks for (target: shipyard ≤ 1.2 × baseline).
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.engine.backup import BackupKey, Backups, run_drills
from shipyard.primitives.pgcluster import PgCluster
from shipyard.primitives.spec.backup import BackupSpec


def timed(fn: object) -> float:
    t0 = time.monotonic()
    fn()  # type: ignore[operator]
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=1, help="zstd threads for shipyard's stream")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-backup-"))
    cluster = PgCluster()
    try:
        cluster.init().start()
        url = cluster.create_database("bench")
        t_init = timed(lambda: subprocess.run(["pgbench", "-i", "-q", "-s", str(args.scale), url], check=True,
                                               capture_output=True, timeout=3600))
        size = cluster.psql("SELECT pg_database_size('bench')").strip()
        print(f"pgbench scale {args.scale}: {int(size) / 1e6:.0f} MB database (init {t_init:.1f}s)")

        baseline_out = work / "baseline.dump.zst"
        shell = f"pg_dump -Fc -d '{url}' | zstd -q -f -o '{baseline_out}'"
        baseline = min(timed(lambda: subprocess.run(["bash", "-o", "pipefail", "-c", shell], check=True,
                                                      timeout=3600)) for _ in range(args.runs))
        print(f"pg_dump -Fc | zstd     {baseline:7.2f}s  {baseline_out.stat().st_size / 1e6:8.1f} MB")

        spec = BackupSpec.model_validate({"repository": str(work / "repo"), "rto": "1h", "rpo": "1h", "sources": [
            {"name": "db", "kind": "postgres", "url": url, "jobs": args.jobs}]})
        backups = Backups(spec, BackupKey(secrets.token_bytes(32), "bench"), base_dir=work)
        best = float("inf")
        for _ in range(args.runs):
            [res] = backups.run()
            if not res.ok:
                print(f"backup failed: {res.error}", file=sys.stderr)
                return 1
            best = min(best, res.duration_s)
        print(f"shipyard backup run    {best:7.2f}s  {res.stored_size / 1e6:8.1f} MB "
              f"(encrypted, with per-table row counts)")
        ratio = best / baseline
        print(f"ratio                  {ratio:7.2f}×  (target ≤ 1.20×) {'PASS' if ratio <= 1.2 else 'MISS'}")

        [drill] = run_drills(backups)
        print(f"restore drill          RTO {drill.rto_s or 0:.2f}s  RPO {drill.rpo_s or 0:.1f}s  "
              f"{'ok' if drill.ok else 'FAILED'}")
        return 0 if drill.ok else 1
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
