"""A backup killed mid-stream (SIGKILL) never looks complete, and the next run removes its leftovers
(blobs no snapshot names, temporary files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from shipyard.engine.backup import BackupKey, Backups

CHILD = textwrap.dedent("""
    import base64, json, sys, threading
    from pathlib import Path
    from shipyard.engine.backup import BackupKey, Backups
    from shipyard.engine.backup.sources import files
    from shipyard.primitives.spec.backup import BackupSpec

    args = json.loads(sys.argv[1])
    reads = 0
    original = files._HashingReader.read
    def read(self, n=-1):
        # After some data has gone down the pipeline, announce it and hang: the parent kills us here.
        global reads
        reads += 1
        if reads == 20:
            sys.stdout.write("streaming\\n"); sys.stdout.flush()
            threading.Event().wait()
        return original(self, n)
    files._HashingReader.read = read
    spec = BackupSpec.model_validate(args["spec"])
    key = BackupKey(base64.b64decode(args["key"]), "test")
    Backups(spec, key, base_dir=Path(args["base"]), chunk_size=1024).run()
""")


def test_killed_backup_is_not_listed_and_is_cleaned(tmp_path: Path, key: BackupKey,
                                                    make_backups: Callable[..., Backups]) -> None:
    src = tmp_path / "uploads"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(1_000_000))
    backups = make_backups([{"kind": "files", "name": "uploads", "path": "uploads"}])
    args = {"spec": backups.spec.model_dump(), "key": __import__("base64").b64encode(key.material).decode(),
            "base": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "streaming"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    root = tmp_path / "repo"
    leftovers = [p for p in (root / "data").rglob("*") if p.is_file()]
    assert leftovers and not list((root / "snapshots").glob("*"))  # blobs went up, no snapshot names them
    assert backups.list_backups() == []
    assert backups.verify() == []

    # A crash in the middle of writing one object leaves a temporary file.
    (root / "data" / "ab").mkdir(exist_ok=True)
    (root / "data" / "ab" / "abcdef.tmp").write_bytes(b"partial")
    assert backups.list_backups() == []

    [res] = backups.run()
    assert res.ok and res.cleaned == len(leftovers) + 1
    m = backups.newest("uploads")
    assert m is not None and m.id == res.backup_id
    on_disk = {p.name for p in (root / "data").rglob("*") if p.is_file()}
    assert on_disk == {b for b, _ in m.blobs}
    assert [p.name for p in (root / "snapshots").iterdir()] == [res.backup_id]
    assert backups.verify()[0].ok
