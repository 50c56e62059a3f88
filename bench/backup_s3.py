"""Backups to S3 (a real SeaweedFS on loopback, started here): time against ``pg_dump | zstd`` uploaded to the
same server, the incremental ratio after writes, and the backup process's peak memory for a large source.

    .venv/bin/python bench/backup_s3.py [--scale 20] [--gib 2] [--no-memory]

1. pgbench ``-s SCALE`` database. Reference: ``pg_dump -Fc | zstd -3`` streamed into one S3 object with
   boto3's multipart ``upload_fileobj`` (8 MiB parts). shipyard: ``Backups.run`` to ``s3://…`` (chunked,
   deduplicated, encrypted, row counts). Same server, same run.
2. ``pgbench -t`` touching ~1 % of the accounts, then a second shipyard backup: its stored bytes over the
   first's.
3. Memory: a ``--gib`` GiB directory of random files backed up to S3 in a child process; its peak RSS
   (``ru_maxrss``, target ≤ 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from offsite.servers import ACCESS, BUCKET, SECRET, SeaweedS3  # noqa: E402
from shipyard.engine.backup import BackupKey, Backups  # noqa: E402
from shipyard.primitives.pgcluster import PgCluster  # noqa: E402
from shipyard.primitives.spec.backup import BackupSpec  # noqa: E402

MIB = 1 << 20
CHILD = """
import json, sys, resource, secrets
from pathlib import Path
from shipyard.engine.backup import BackupKey, Backups
from shipyard.primitives.spec.backup import BackupSpec
a = json.loads(sys.argv[1])
spec = BackupSpec.model_validate(a["spec"])
[r] = Backups(spec, BackupKey(secrets.token_bytes(32), "bench"), base_dir=Path(a["base"]), secrets=a["secrets"]).run()
print(json.dumps({"ok": r.ok, "error": r.error, "plain": r.plain_size, "stored": r.stored_size,
                  "seconds": r.duration_s, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def spec_for(s3: SeaweedS3, prefix: str, sources: list[dict[str, object]]) -> dict[str, object]:
    return {"repository": f"s3://{BUCKET}/{prefix}", "sources": sources,
            "s3": {"endpoint": s3.endpoint, "access_key_secret": "K", "secret_key_secret": "S"}}


def reference(s3: SeaweedS3, url: str) -> tuple[float, int]:
    from boto3.s3.transfer import TransferConfig

    client = s3.client()
    t0 = time.monotonic()
    dump = subprocess.Popen(["pg_dump", "-Fc", "-d", url], stdout=subprocess.PIPE)
    zstd = subprocess.Popen(["zstd", "-q", "-3", "-c"], stdin=dump.stdout, stdout=subprocess.PIPE)
    assert dump.stdout is not None and zstd.stdout is not None
    dump.stdout.close()
    client.upload_fileobj(zstd.stdout, BUCKET, "reference/db.dump.zst",
                          Config=TransferConfig(multipart_chunksize=8 * MIB, max_concurrency=4))
    assert zstd.wait() == 0 and dump.wait() == 0
    took = time.monotonic() - t0
    return took, int(client.head_object(Bucket=BUCKET, Key="reference/db.dump.zst")["ContentLength"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-s3-"))
    s3 = SeaweedS3().start()
    cluster = PgCluster()
    keys = {"K": ACCESS, "S": SECRET}
    try:
        cluster.init().start()
        url = cluster.create_database("bench")
        subprocess.run(["pgbench", "-i", "-q", "-s", str(args.scale), url], check=True, capture_output=True)
        size = int(cluster.psql("SELECT pg_database_size('bench')").strip())
        print(f"pgbench scale {args.scale}: {size / 1e6:.0f} MB database")
        ref_s, ref_bytes = reference(s3, url)
        print(f"pg_dump -Fc | zstd -3 → S3 (multipart)  {ref_s:7.2f} s  {ref_bytes / 1e6:8.1f} MB")
        spec = BackupSpec.model_validate(spec_for(s3, "pg", [{"kind": "postgres", "name": "db", "url": url}]))
        backups = Backups(spec, BackupKey(secrets.token_bytes(32), "bench"), base_dir=work, secrets=keys)
        [first] = backups.run()
        assert first.ok, first.error
        print(f"shipyard backup run → S3               {first.duration_s:7.2f} s  {first.stored_size / 1e6:8.1f} MB "
              f"({first.duration_s / ref_s:.2f}x the reference)")
        accounts = 100_000 * args.scale
        subprocess.run(["pgbench", "-n", "-t", str(accounts // 100 // 4), "-c", "4", "-j", "2", url], check=True,
                       capture_output=True)
        [second] = backups.run()
        assert second.ok, second.error
        print(f"after pgbench -t (~1 % of accounts updated): second backup stored {second.stored_size / 1e6:.1f} MB "
              f"= {100 * second.stored_size / first.stored_size:.1f} % of the first, in {second.duration_s:.2f} s")
        if args.no_memory:
            return 0
        tree = work / "tree"
        rng = random.Random(1)
        files = int(args.gib * 1024 / 8)
        for i in range(files):
            d = tree / f"d{i % 16}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i}.bin").write_bytes(rng.randbytes(8 * MIB))
        child = {"spec": spec_for(s3, "mem", [{"kind": "files", "name": "tree", "path": str(tree)}]),
                 "base": str(work), "secrets": keys}
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(child)], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        r = json.loads(out.stdout)
        assert r["ok"], r["error"]
        rss = r["maxrss_kib"] / 1024
        print(f"memory: {r['plain'] / 2**30:.2f} GiB source → S3 in {r['seconds']:.1f} s "
              f"({r['plain'] / MIB / r['seconds']:.0f} MiB/s), peak RSS {rss:.0f} MiB (target <= 200 MB)")
        return 0 if rss * MIB <= 200e6 else 1
    finally:
        cluster.destroy()
        s3.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
