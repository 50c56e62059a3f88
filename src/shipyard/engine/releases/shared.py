"""Shared dirs per environment: ``<state>/shared/<env>/<dir>``, and the move from the old layout.

Before, ``<state>/shared/<dir>`` was one directory for every environment (staging and production wrote
the same SQLite file). Now each environment has its own; a release never holds the link (it deploys to
any environment), its instances run in a per-environment work dir that does (``workdir``).

The old layout is migrated the first time an environment needs a shared dir, once per (environment,
dir), without losing a byte: the pre-upgrade top-level entries of ``shared/`` are recorded in
``shared/.layout.json`` (written once, before any per-environment dir exists, so an old dir is never
mistaken for an environment's); each environment gets a complete copy of the old dir (copied under a
temporary name, checked file by file, then renamed into place), and the old dir itself stays where
it is — untouched, because instances started before the upgrade may still be writing there. Delete it
once every environment has its copy and no such instance runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path, PurePosixPath

from shipyard.errors import ShipyardError

log = logging.getLogger("shipyard.releases")

SHARED = "shared"  # under the state dir
LAYOUT = ".layout.json"  # under shared/: {"layout": "per-env", "legacy": [top-level names]}
_TMP = ".migrating-"


def shared_root(state_dir: Path) -> Path:
    return state_dir / SHARED


def env_shared_dir(state_dir: Path, env: str, rel: str | PurePosixPath) -> Path:
    """Where environment ``env`` keeps shared dir ``rel``: ``<state>/shared/<env>/<rel>``."""
    return shared_root(state_dir) / env / str(rel)


def legacy_entries(state_dir: Path) -> list[str]:
    """The top-level names in ``shared/`` from before the per-environment layout (recorded once)."""
    root = shared_root(state_dir)
    layout = root / LAYOUT
    try:
        return [str(n) for n in json.loads(layout.read_text(encoding="utf-8"))["legacy"]]
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError) as exc:
        raise ShipyardError(f"{layout} is damaged ({exc}); it lists the shared dirs from before the "
                            "per-environment layout — restore it or write {\"legacy\": []}") from exc
    root.mkdir(parents=True, exist_ok=True)
    legacy = sorted(e.name for e in root.iterdir() if not e.name.startswith("."))
    tmp = root / f"{LAYOUT}.tmp"
    tmp.write_text(json.dumps({"layout": "per-env", "legacy": legacy}) + "\n", encoding="utf-8")
    os.rename(tmp, layout)
    if legacy:
        log.info("shared dirs are per environment now; %s from before stay in %s until every environment "
                 "has copied them", ", ".join(legacy), root)
    return legacy


def ensure_env_shared(state_dir: Path, env: str, rel: PurePosixPath) -> Path:
    """``<state>/shared/<env>/<rel>``, created — from a complete copy of the old ``shared/<rel>`` when
    there is one (once; idempotent) — and returned."""
    legacy = legacy_entries(state_dir)
    if env in legacy:
        raise ShipyardError(f"{shared_root(state_dir) / env} is a shared dir from before shared dirs were kept "
                            f"per environment, and environment {env!r} needs that name: move it aside")
    target = env_shared_dir(state_dir, env, rel)
    if target.is_dir():
        return target
    source = shared_root(state_dir) / str(rel)
    if rel.parts[0] in legacy and source.is_dir():
        _copy_complete(source, target)
        log.info("migrated shared dir %s to environment %s: copied %s into %s (the original is kept)",
                 rel, env, _describe(source), target)
    else:
        target.mkdir(parents=True, exist_ok=True)
    return target


def _copy_complete(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{_TMP}{target.name}-{os.getpid()}"
    for stale in target.parent.glob(f"{_TMP}{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)  # a copy a crash interrupted
    shutil.copytree(source, tmp, symlinks=True)
    missing = _differences(source, tmp)
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ShipyardError(f"copying {source} to {target} left out {', '.join(missing[:5])}"
                            f"{' …' if len(missing) > 5 else ''} (written during the copy?); start again")
    os.rename(tmp, target)


def _inventory(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            st = full.lstat()
            out[full.relative_to(root).as_posix()] = st.st_size if full.is_file() and not full.is_symlink() else -1
    return out


def _differences(source: Path, copy: Path) -> list[str]:
    """Paths of ``source`` that ``copy`` lacks or holds with another size."""
    theirs = _inventory(copy)
    return sorted(rel for rel, size in _inventory(source).items() if theirs.get(rel) != size)


def _describe(root: Path) -> str:
    inv = _inventory(root)
    files = [s for s in inv.values() if s >= 0]
    return f"{len(files)} file(s), {sum(files)} bytes"
