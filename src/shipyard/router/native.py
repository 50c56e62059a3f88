"""The router's hot-path modules compiled with mypyc, used only when built from exactly these sources.

``python -m shipyard.router.buildnative`` (``make router-native``, run by the install rule) compiles
``COMPILED`` into ``~/.cache/shipyard/router-native/<key>/``; ``key`` hashes the sources of the router
and of the primitives it reads, and the interpreter's ABI. ``shipyard/router/__init__.py`` calls
``install()``: when a build with the current key exists, an import finder loads those modules from it;
otherwise (no mypy/compiler, sources edited since the build, ``SHIPYARD_ROUTER_PURE=1``) the same
modules run as plain Python. Keyed by content, a build can never run code other than what is on disk.

Why: per request the router spends about half its CPU in its own Python (parsing callbacks, head
rewriting, the exchange's bookkeeping); compiled, that part takes about half the time
(docs/benchmarks.md, router section).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# Dotted names under ``shipyard``: the router's hot path, and the per-request metrics it records into
# (``Series.record`` once per request: 1.5 µs interpreted). Only a process that imports ``shipyard.router``
# before ``shipyard.primitives.metrics`` (the router) gets the compiled metrics; any other keeps plain Python.
COMPILED = ("router.h1", "router.h1response", "router.headers", "router.tracing", "router.exchange", "router.proxy",
            "router.upstream", "router.accesslog", "router.env", "router.clientip", "primitives.metrics.histogram",
            "primitives.metrics.slices")
_PKG = Path(__file__).resolve().parent  # shipyard/router
_ROOT = _PKG.parent  # shipyard
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
DONE = "complete"  # written last: a build dir without it is unfinished
state = {"native": False, "dir": ""}  # what install() decided, for `ping` and the benches


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shipyard" / "router-native"


def _key_sources() -> list[Path]:
    # The compiled modules and every module whose types they were compiled against.
    prim = _ROOT / "primitives"
    return sorted([*_PKG.glob("*.py"), *(prim / "spec").glob("*.py"), *(prim / "metrics").glob("*.py"),
                   prim / "routerproto.py"])


def source_key() -> str:
    h = hashlib.sha256(SUFFIX.encode() + sys.version.encode())
    for path in _key_sources():
        h.update(str(path.relative_to(_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


class _Finder(importlib.abc.MetaPathFinder):
    """Serves ``shipyard.<compiled>`` and mypyc's shared ``*__mypyc`` library from one build dir."""

    def __init__(self, build: Path) -> None:
        self.build = build
        self.names = {f"shipyard.{m}": build / f"{m}{SUFFIX}" for m in COMPILED}
        for lib in build.glob(f"*__mypyc{SUFFIX}"):
            self.names[lib.name[: -len(SUFFIX)]] = lib

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> ModuleSpec | None:
        file = self.names.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def install() -> bool:
    """Use the compiled modules if a build of exactly these sources exists (before any of them is imported)."""
    if os.environ.get("SHIPYARD_ROUTER_PURE"):
        return False
    try:
        build = cache_root() / source_key()
        if not (build / DONE).exists():
            return False
    except OSError:
        return False
    try:
        os.utime(build / DONE)  # "used": buildnative.prune keeps builds loaded in the last day
    except OSError:
        pass  # a read-only cache is still usable
    sys.meta_path.insert(0, _Finder(build))
    state.update(native=True, dir=str(build))
    return True
