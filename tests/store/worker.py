"""A second process for the store tests: ``python worker.py ACTION URL STATE_DIR [RELEASE]``.

Prints ``ready`` once imported, waits for a line on stdin (so several workers start their action at the
same moment), does ACTION, prints one JSON line. ``hold`` then waits for another line and finishes.
URL ``-`` means the default SQLite database under STATE_DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipyard.errors import LockHeld
from shipyard.primitives.store import open_store
from shipyard.primitives.store.migrate import current_revision


def main() -> None:
    action, url, state_dir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    release = sys.argv[4] if len(sys.argv) > 4 else "r1"
    print("ready", flush=True)
    sys.stdin.readline()
    store = open_store(None if url == "-" else url, state_dir)
    if action == "open":
        with store._engine.connect() as conn:
            print(json.dumps({"revision": current_revision(conn)}), flush=True)
        return
    try:
        dep = store.begin_deployment("staging", kind="deploy", release=release, previous_release=None,
                                     strategy="rolling", plan=[], started_at=100.0)
    except LockHeld as exc:
        print(json.dumps({"lock_held": str(exc)}), flush=True)
        return
    print(json.dumps({"deployment": dep.id}), flush=True)
    if action == "hold":
        sys.stdin.readline()
        store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=200.0)
        print(json.dumps({"finished": dep.id}), flush=True)
    store.close()


if __name__ == "__main__":
    main()
