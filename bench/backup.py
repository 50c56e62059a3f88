"""Backup benchmark: shipyard's encrypted backup of a pgbench database vs ``pg_dump -Fc | zstd`` alone,
plus the restore-drill RTO, then PITR through pgBackRest: full and incremental backup times, the RPO under
ongoing writes and the PITR drill's RTO.

    .venv/bin/python bench/backup.py [--scale 50] [--jobs 1] [--runs 1] [--pitr-seconds 150 | --no-pitr]

Starts its own throwaway PostgreSQL cluster (initdb + pg_ctl on a free port), fills it with
``pgbench -i -s SCALE``, then times each side (best of --runs) and prints the figures and the ratio the
issue asks for (target: shipyard ≤ 1.2 × baseline).

PITR: the source gets ``pitr = true`` and ``rpo = 60s``; shipyard sets WAL archiving (archive_timeout 30 s,
half the RPO) and asks for the restart it needs, which the benchmark does. While ``pgbench -R 50`` writes,
RPO = now − the newest restorable point (arrival of the newest WAL segment in the archive) is sampled every
2 s (target: ≤ 60 s at every sample).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.engine.backup import BackupKey, Backups, run_drills
from shipyard.engine.backup.service import RunResult
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
    ap.add_argument("--pitr-seconds", type=float, default=150, help="how long to sample RPO under writes")
    ap.add_argument("--no-pitr", action="store_true", help="skip the pgBackRest part")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-backup-"))
    os.chmod(work, 0o711)  # the cluster's OS user must reach the pgBackRest repository inside
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
        if not drill.ok:
            return 1
        return 0 if args.no_pitr else pitr(cluster, url, work, args.pitr_seconds)
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


def _ok(res: RunResult) -> RunResult:
    if not res.ok:
        raise SystemExit(f"PITR backup failed: {res.error}")
    return res


def pitr(cluster: PgCluster, url: str, work: Path, seconds: float) -> int:
    spec = BackupSpec.model_validate({"repository": str(work / "pitr-repo"), "rto": "1h", "rpo": "60s",
                                      "retention": {"keep_daily": 7},
                                      "sources": [{"name": "db", "kind": "postgres", "url": url, "pitr": True,
                                                   "check_sql": ["SELECT count(*) > 0 FROM pgbench_accounts"]}]})
    backups = Backups(spec, BackupKey(secrets.token_bytes(32), "bench"), base_dir=work)
    [first] = backups.run()
    if not first.ok and "restart" in (first.error or ""):
        cluster.stop()  # shipyard set archive_mode with ALTER SYSTEM and asks for this restart
        cluster.start()
        [first] = backups.run()
    full = _ok(first)
    assert full.pitr is not None
    print(f"pgBackRest {full.pitr['type']:<4} backup {full.duration_s:7.2f}s  {full.stored_size / 1e6:8.1f} MB stored "
          f"(cluster {full.plain_size / 1e6:.0f} MB; zstd, AES-256-CBC)")

    stanza = backups.stanza(spec.sources[0])  # type: ignore[arg-type]
    writer = subprocess.Popen(["pgbench", "-n", "-c", "2", "-R", "50", "-T", str(int(seconds)), url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[float] = []
    incr: RunResult | None = None
    t_end = time.monotonic() + seconds
    try:
        while time.monotonic() < t_end:
            now = time.time()
            newest = stanza.restorable_until(stanza.info(), now)
            if newest is not None:
                samples.append(now - newest)
            if incr is None and time.monotonic() > t_end - seconds / 2:
                [incr] = backups.run()  # an incremental halfway, under the writes
                _ok(incr)
            time.sleep(2)
    finally:
        if writer.wait(timeout=seconds + 60) != 0:
            print(f"pgbench failed: {writer.stderr.read().decode() if writer.stderr else ''}", file=sys.stderr)
    if incr is not None and incr.pitr is not None:
        print(f"pgBackRest {incr.pitr['type']:<4} backup {incr.duration_s:7.2f}s  {incr.stored_size / 1e6:8.1f} MB "
              "stored (under pgbench -R 50)")
    worst = max(samples)
    print(f"RPO with PITR          median {statistics.median(samples):.1f}s  max {worst:.1f}s over {len(samples)} "
          f"samples in {seconds:.0f}s of writes (archive_timeout "
          f"{cluster.psql('SHOW archive_timeout').strip()}; target ≤ 60s) {'PASS' if worst <= 60 else 'MISS'}")
    [drill] = run_drills(backups)
    print(f"PITR restore drill     RTO {drill.rto_s or 0:.2f}s (restore + WAL replay + promotion + checks)  "
          f"RPO {drill.rpo_s or 0:.1f}s  {'ok' if drill.ok else 'FAILED'}")
    for c in drill.checks:
        if not c.ok:
            print(f"  FAIL {c.name}: {c.detail}")
    return 0 if drill.ok and worst <= 60 else 1


if __name__ == "__main__":
    raise SystemExit(main())
