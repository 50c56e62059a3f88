"""The release catalog on disk: ids, where a release lives, its metadata, pruning and crash leftovers.

The catalog is the ``releases/`` directory of the state dir; the control plane also keeps a record per
release in the state store, so ``new_release_id`` asks the caller whether an id is ``taken`` (the
caller checks both).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shipyard.engine.gitrepo import Commit
from shipyard.errors import BadInput, ShipyardError

BUILD_LOG = ".shipyard-build.log"
RELEASE_META = ".shipyard-release.json"
RELEASES = "releases"  # under the state dir
WORKDIRS = "workdirs"  # under the state dir: <env>/<release id>/, see workdir.py
WORKDIR_MARKER = ".shipyard-workdir"
_TMP = ".tmp-"
_DELETING = ".deleting-"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_MAX_SUFFIX = 10_000


@dataclass(frozen=True)
class BuiltRelease:
    id: str
    path: Path  # the release directory (instances run with this as cwd)
    commit: Commit
    ref: str  # the ref as the user gave it ("main", "v2", a sha)
    build_duration_s: float  # archive + shared links + build commands
    content_hash: str  # "sha256:<hex>" over the release tree, see content_hash()
    build_log: Path  # <path>/.shipyard-build.log
    built_at: float = 0.0  # wall-clock seconds since the epoch
    shared: tuple[str, ...] = ()  # app.shared: linked per environment in its work dirs, not in the release


def valid_release_id(release_id: str) -> bool:
    """Letters, digits, '.', '_' and '-', starting with a letter or digit: never a path outside releases/."""
    return bool(_ID_RE.match(release_id))


def release_dir(state_dir: Path, release_id: str) -> Path:
    """Where release ``release_id`` lives: ``<state_dir>/releases/<release_id>``. BadInput for an id that
    could address anything else."""
    if not valid_release_id(release_id):
        raise BadInput(f"invalid release id {release_id!r} (letters, digits, '.', '_' and '-')")
    return state_dir / RELEASES / release_id


def workdir_path(state_dir: Path, env: str, release_id: str) -> Path:
    """Where ``release_id``'s instances run in ``env`` when it has shared dirs (workdir.py)."""
    return state_dir / WORKDIRS / env / release_id


def new_release_id(commit: Commit, now: float, taken: Callable[[str], bool]) -> str:
    """``r<UTC yyyymmddHHMMSS of now>-<7-char short sha>``, with ``-2``, ``-3``... while ``taken(id)``.

    ``taken`` is the caller's test of uniqueness: the control plane checks the store's records and the
    release directory (``release_dir(...).exists()``).
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    base = f"r{stamp}-{commit.sha[:7]}"
    candidate = base
    for n in range(2, _MAX_SUFFIX):
        if not taken(candidate):
            return candidate
        candidate = f"{base}-{n}"
    raise ShipyardError(f"no free release id for {base}: {_MAX_SUFFIX} are taken")


def write_meta(release: BuiltRelease) -> None:
    """Write ``.shipyard-release.json`` last and rename it into place: its appearance completes a release."""
    data: dict[str, Any] = asdict(release)
    data["path"] = str(release.path)
    data["build_log"] = str(release.build_log)
    data["shared"] = list(release.shared)
    tmp = release.path / f"{RELEASE_META}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.rename(tmp, release.path / RELEASE_META)


def releases_to_prune(all_ids_newest_first: list[str], keep_ids: set[str], keep_newest: int) -> list[str]:
    """The ids to delete: all but the ``keep_newest`` newest, never one in ``keep_ids``.

    ``keep_ids`` are the releases serving or kept warm in any environment; they survive even when
    older than the newest ``keep_newest`` (and do not count towards that number).
    """
    if keep_newest < 0:
        raise BadInput(f"keep_releases must be at least 0, got {keep_newest}")
    ordered = list(dict.fromkeys(all_ids_newest_first))
    return [i for i in ordered[keep_newest:] if i not in keep_ids]


def prune_releases(
    state_dir: Path, keep_ids: set[str], keep_newest: int, all_ids_newest_first: list[str]
) -> list[str]:
    """Delete the release dirs ``releases_to_prune`` picks; returns those ids (also ones already gone)."""
    releases_dir = state_dir.absolute() / RELEASES
    doomed = releases_to_prune(all_ids_newest_first, keep_ids, keep_newest)
    for release_id in doomed:
        if not valid_release_id(release_id):
            continue  # never let an odd id address anything outside releases/
        path = release_dir(state_dir.absolute(), release_id)
        if not path.exists():
            continue
        # Renamed away first so a half-deleted release never looks complete.
        trash = releases_dir / f"{_DELETING}{release_id}-{os.getpid()}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        remove_workdirs(state_dir, release_id)
    return doomed


def remove_leftovers(state_dir: Path) -> list[str]:
    """Remove what a crash left in releases/: unfinished builds (no metadata) and half-done deletions.

    Call it only when no build is running (at control-plane start). Work dirs left unfinished, or whose
    release is gone, go too (named ``workdirs/<env>/<name>``).
    """
    releases_dir = state_dir.absolute() / RELEASES
    if not releases_dir.is_dir():
        return []
    removed: list[str] = [f"{WORKDIRS}/{w}" for w in remove_workdir_leftovers(state_dir)]
    for entry in releases_dir.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue
        if entry.name.startswith(_DELETING) or not (entry / RELEASE_META).is_file():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return sorted(removed)


def remove_workdirs(state_dir: Path, release_id: str) -> None:
    """Remove every environment's work dir of ``release_id`` (it is being pruned)."""
    root = state_dir.absolute() / WORKDIRS
    if not root.is_dir():
        return
    for env_dir in root.iterdir():
        path = env_dir / release_id
        if path.is_dir() and not path.is_symlink():
            trash = env_dir / f"{_TMP}deleting-{release_id}-{os.getpid()}"
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)


def remove_workdir_leftovers(state_dir: Path) -> list[str]:
    """Unfinished work dirs (a crash) and those whose release is gone; call it when nothing is starting."""
    root = state_dir.absolute() / WORKDIRS
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for env_dir in root.iterdir():
        if not env_dir.is_dir() or env_dir.is_symlink():
            continue
        for entry in env_dir.iterdir():
            release_gone = not (state_dir.absolute() / RELEASES / entry.name / RELEASE_META).is_file()
            if entry.name.startswith(_TMP) or not (entry / WORKDIR_MARKER).exists() or release_gone:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(f"{env_dir.name}/{entry.name}")
    return sorted(removed)
