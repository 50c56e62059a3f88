"""``python -m shipyard.router.buildnative``: compile the router's hot-path modules with mypyc into the
cache directory ``native.install()`` looks in (see native.py). Needs mypy (the dev extra) and a C compiler;
without them the router runs as plain Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.router.native import COMPILED, DONE, SUFFIX, cache_root, source_key

_ROOT = Path(__file__).resolve().parent.parent  # shipyard
KEEP_BUILDS = 4  # finished builds of other sources kept besides the current one (see prune)
RECENT_S = 24 * 3600  # a build loaded this recently is never pruned


def build(verbose: bool = False) -> Path:
    """Compile ``COMPILED`` from a copy of the sources (never next to them: an edited source must not be
    shadowed by a stale extension) and move the result into the cache under the sources' key."""
    key = source_key()
    dest = cache_root() / key
    if (dest / DONE).exists():
        return dest
    with tempfile.TemporaryDirectory(prefix="shipyard-native-") as t:
        tmp = Path(t)
        shutil.copytree(_ROOT, tmp / "shipyard", ignore=shutil.ignore_patterns("__pycache__", f"*{SUFFIX}"))
        if source_key() != key:
            raise RuntimeError("the router's sources changed during the build")
        files = [f"shipyard/{m.replace('.', '/')}.py" for m in COMPILED]
        proc = subprocess.run([sys.executable, "-m", "mypyc", *files], cwd=tmp, capture_output=not verbose,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"mypyc failed:\n{proc.stdout or ''}{proc.stderr or ''}"[-4000:])
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_mkroot()))
        for m in COMPILED:
            shutil.copy2(tmp / "shipyard" / f"{m.replace('.', '/')}{SUFFIX}", staging / f"{m}{SUFFIX}")
        for lib in tmp.glob(f"*__mypyc{SUFFIX}"):
            shutil.copy2(lib, staging / lib.name)
        (staging / DONE).write_text(key + "\n")
        try:
            staging.rename(dest)
        except OSError:  # another build of the same sources won the race
            shutil.rmtree(staging, ignore_errors=True)
    prune(keep={key})
    return dest


def prune(keep: set[str], newest: int = KEEP_BUILDS, now: float | None = None) -> list[Path]:
    """Remove old builds: every source edit makes a new one (a few MB), so without this the cache only
    grows. The cache is shared by every checkout of this user (worktrees, a before/after pair), so a build
    loaded in the last day is kept whoever loaded it (``native.install`` touches its completion mark);
    beyond those, ``keep`` and the ``newest`` other finished builds stay, and unfinished ones younger than
    an hour (a build under way). A router running from a removed build keeps its mapped files; one started
    later from those sources runs as plain Python until rebuilt."""
    root = cache_root()
    now = time.time() if now is None else now
    finished: list[tuple[float, Path]] = []
    doomed: list[Path] = []
    for d in root.iterdir() if root.is_dir() else ():
        if d.name in keep or not d.is_dir():
            continue
        done = d / DONE
        if done.exists():
            used = done.stat().st_mtime
            if now - used > RECENT_S:
                finished.append((used, d))
        elif now - d.stat().st_mtime > 3600:
            doomed.append(d)
    finished.sort(reverse=True)
    doomed += [d for _, d in finished[newest:]]
    for d in doomed:
        shutil.rmtree(d, ignore_errors=True)
    return doomed


def _mkroot() -> Path:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--key":
        print(source_key())
        return 0
    try:
        dest = build(verbose="-v" in args)
    except (RuntimeError, OSError) as exc:
        print(f"router: compiled modules not built, the router runs as plain Python: {exc}", file=sys.stderr)
        return 1
    print(f"router: compiled modules in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
