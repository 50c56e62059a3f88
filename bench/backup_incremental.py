"""Incremental backups: a directory backed up, 1 % of it changed, backed up again.

    .venv/bin/python bench/backup_incremental.py [--mib 1024] [--repository DIR|s3://…] [--avg-kib 256]

The tree is ``--mib`` files of 1 MiB of random (incompressible) bytes in 16 directories. The change: 1 % of
the files, each with 512 KiB rewritten in place at a random offset, plus new files of 0.5 % of the tree's
size: 1 % of the bytes. Prints the second backup's stored bytes as a share of
the first's (target ≤ 5 %), both backup times, and restores each backup and compares the tree digest
(content hashes, modes, mtimes) with the tree as it was.
"""

from __future__ import annotations

import argparse
import platform
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from shipyard.engine.backup import BackupKey, Backups  # noqa: E402
from shipyard.engine.backup.sources.files import tree_digest  # noqa: E402
from shipyard.primitives.spec.backup import BackupSpec  # noqa: E402

MIB = 1 << 20


def make_tree(root: Path, files: int, rng: random.Random) -> None:
    for i in range(files):
        d = root / f"d{i % 16:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}.bin").write_bytes(rng.randbytes(MIB))


def change(root: Path, files: int, rng: random.Random) -> int:
    """Rewrites 512 KiB inside 1 % of the files and adds 0.5 % new bytes; returns the bytes changed."""
    changed = 0
    for i in rng.sample(range(files), max(1, files // 100)):
        path = root / f"d{i % 16:02d}" / f"f{i:05d}.bin"
        with open(path, "r+b") as fh:
            fh.seek(rng.randrange(MIB // 2))
            fh.write(rng.randbytes(MIB // 2))
        changed += MIB // 2
    extra = max(1, files // 200)
    for j in range(extra):
        (root / f"d{j % 16:02d}" / f"new{j}.bin").write_bytes(rng.randbytes(MIB))
        changed += MIB
    return changed


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--repository", default=None, help="default: a temporary directory")
    ap.add_argument("--avg-kib", type=int, default=256)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-incr-"))
    try:
        rng = random.Random(42)
        src = work / "tree"
        make_tree(src, args.mib, rng)
        spec = BackupSpec.model_validate({"repository": args.repository or str(work / "repo"),
                                          "sources": [{"kind": "files", "name": "tree", "path": str(src)}]})
        backups = Backups(spec, BackupKey(secrets.token_bytes(32), "bench"), base_dir=work,
                          chunk_size=args.avg_kib * 1024)
        t0 = time.monotonic()
        [first] = backups.run()
        t_first = time.monotonic() - t0
        digest_first = tree_digest(src)
        changed = change(src, args.mib, rng)
        t0 = time.monotonic()
        [second] = backups.run()
        t_second = time.monotonic() - t0
        digest_second = tree_digest(src)
        assert first.ok and second.ok, (first.error, second.error)
        identical = []
        for res, digest in ((first, digest_first), (second, digest_second)):
            out = work / f"restore-{res.backup_id}"
            t0 = time.monotonic()
            backups.restore("tree", backup_id=res.backup_id, to_path=out)
            identical.append((tree_digest(out) == digest, time.monotonic() - t0))
            shutil.rmtree(out)
        ratio = second.stored_size / first.stored_size
        print(f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}")
        print(f"tree: {args.mib} MiB in {args.mib} files; changed {changed / MIB:.1f} MiB "
              f"({100 * changed / (args.mib * MIB):.2f} % of the bytes, {args.mib // 100} files edited, "
              f"{max(1, args.mib // 200)} added); average chunk {args.avg_kib} KiB")
        print(f"first backup:  {first.stored_size / MIB:8.1f} MiB stored in {t_first:6.1f} s "
              f"({first.plain_size / MIB / t_first:.0f} MiB/s)")
        print(f"second backup: {second.stored_size / MIB:8.1f} MiB stored in {t_second:6.1f} s")
        print(f"incremental ratio: {100 * ratio:.2f} % of the first backup's bytes (target <= 5 %)")
        for (ok, took), name in zip(identical, ("first", "second"), strict=True):
            print(f"restore of the {name}: {'identical' if ok else 'DIFFERS'} ({took:.1f} s)")
        return 0 if ratio <= 0.05 and all(ok for ok, _ in identical) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
