"""``python -m shipyard.router.buildnative``: compile the router's hot-path modules with mypyc into the
cache directory ``native.install()`` looks in (see native.py). Needs mypy (the dev extra) and a C compiler;
without them the router runs as plain Python."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shipyard.router.native import COMPILED, DONE, SUFFIX, cache_root, source_key

_ROOT = Path(__file__).resolve().parent.parent  # shipyard


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
        files = [f"shipyard/router/{m}.py" for m in COMPILED]
        proc = subprocess.run([sys.executable, "-m", "mypyc", *files], cwd=tmp, capture_output=not verbose,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"mypyc failed:\n{proc.stdout or ''}{proc.stderr or ''}"[-4000:])
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_mkroot()))
        for m in COMPILED:
            shutil.copy2(tmp / "shipyard" / "router" / f"{m}{SUFFIX}", staging / f"{m}{SUFFIX}")
        for lib in tmp.glob(f"*__mypyc{SUFFIX}"):
            shutil.copy2(lib, staging / lib.name)
        (staging / DONE).write_text(key + "\n")
        try:
            staging.rename(dest)
        except OSError:  # another build of the same sources won the race
            shutil.rmtree(staging, ignore_errors=True)
    return dest


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
