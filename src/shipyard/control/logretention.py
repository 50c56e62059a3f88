"""Log retention by age (``[logs] max_age``): rotated copies and the logs of instances that are gone.

Size is bounded by rotation (``logfiles``: ``max_size`` × ``keep`` per file); age by this sweep, run by
the control plane every ``PRUNE_EVERY_S``: under ``.shipyard/logs/`` a rotated copy (``NAME.N``) not
written for ``max_age`` is deleted, and so is a live-looking ``*.log`` of an instance that no longer
runs (not in ``live``) and was not written for ``max_age``. The control plane's and the router's live
files are never deleted. ``now`` is given (a test clock), file times are the files' mtimes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path

PRUNE_EVERY_S = 600.0
_ROTATED = re.compile(r"\.\d+$")


def prune_aged(root: Path, max_age: float, now: float, live: Iterable[Path] = ()) -> list[Path]:
    """Delete what is older than ``max_age`` under ``root`` (see the module); returns what was deleted."""
    keep = {p.resolve() for p in live}
    cutoff = now - max_age
    gone: list[Path] = []
    if not root.is_dir():
        return gone
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        rotated = _ROTATED.search(path.name) is not None
        dead_instance = (path.suffix == ".log" and path.parent != root and path.parent.name != "router"
                         and path.resolve() not in keep)
        if not (rotated or dead_instance):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                gone.append(path)
    return gone
