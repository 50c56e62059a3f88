"""Where a release's instances run in one environment: the release dir, or its per-environment work dir.

A release is built once and deploys to any environment, so it cannot hold a link to one environment's
shared dirs. A release with ``app.shared`` dirs runs instead in ``<state>/workdirs/<env>/<release>/``:
the release's tree again — directories recreated, files hard-linked (no copy, no extra disk; a copy
only where the file system refuses links), symlinks as they are — with each shared path a relative
link to ``<state>/shared/<env>/<path>``. Real files rather than links to the release, so that code
resolving its own location (``Path(__file__).resolve()``, Flask's ``instance_path``) finds the
environment's shared dirs next to it. A release without shared dirs runs in the release dir itself.

A work dir is made once per (environment, release), under a temporary name renamed into place, and
marked complete by ``.shipyard-workdir``; pruning a release removes its work dirs.

Releases built before shared dirs were per environment hold the link themselves (to
``../../shared/<dir>``): such a link is recognised and pointed at the environment's dir in the work
dir, so old releases (a rollback) get their environment's data too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path, PurePosixPath

from shipyard.engine.releases.catalog import RELEASE_META, release_dir, workdir_path
from shipyard.engine.releases.catalog import WORKDIR_MARKER as MARKER
from shipyard.engine.releases.shared import ensure_env_shared, shared_root
from shipyard.errors import DeployFailed

log = logging.getLogger("shipyard.releases")

_TMP = ".tmp-"


# Releases are immutable: what a release's shared dirs are is read once per process (per build of an
# id: a pruned release rebuilt under the same id has a new metadata file).
_known: dict[tuple[Path, int, int], list[PurePosixPath]] = {}
_making = threading.Lock()


def release_shared(state_dir: Path, release: Path) -> list[PurePosixPath]:
    """The shared dirs a release was built with: ``shared`` in its metadata, or, for a release built
    before that was recorded, the links it holds into ``<state>/shared/``."""
    try:
        st = (release / RELEASE_META).stat()
        key = (release, st.st_ino, st.st_mtime_ns)
        if key in _known:
            return _known[key]
        meta = json.loads((release / RELEASE_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = ([PurePosixPath(p) for p in meta["shared"]] if "shared" in meta
             else _legacy_links(state_dir, release))
    _known[key] = found
    return found


def instance_dir(state_dir: Path, env: str, release_id: str) -> Path:
    """The directory instances of ``release_id`` run in in ``env`` (made on first use; blocking)."""
    state_dir = state_dir.absolute()
    release = release_dir(state_dir, release_id)
    final = workdir_path(state_dir, env, release_id)
    if (final / MARKER).exists():
        return final
    shared = release_shared(state_dir, release)
    if not shared:
        return release
    with _making:  # one maker at a time (a deploy's thread and the event loop may both ask)
        if (final / MARKER).exists():
            return final
        _make(state_dir, env, release_id, release, final, shared)
    return final


def _make(state_dir: Path, env: str, release_id: str, release: Path, final: Path,
          shared: list[PurePosixPath]) -> None:
    t0 = time.monotonic()
    tmp = final.parent / f"{_TMP}{release_id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _mirror(release, tmp, {str(p) for p in shared})
        for rel in shared:
            link = tmp / str(rel)
            link.parent.mkdir(parents=True, exist_ok=True)
            target = ensure_env_shared(state_dir, env, rel)
            # Relative to where the link will live, so the project (and .shipyard/ with it) can move.
            link.symlink_to(os.path.relpath(target, (final / str(rel)).parent), target_is_directory=True)
        (tmp / MARKER).write_text(f"{env} {release_id}\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)  # an incomplete one (no marker)
        os.rename(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DeployFailed(f"cannot prepare the work dir of {release_id} in {env}: {exc}") from exc
    log.info("work dir of %s in %s ready in %.2fs (shared: %s)", release_id, env, time.monotonic() - t0,
             ", ".join(str(p) for p in shared))


def _mirror(src: Path, dst: Path, skip: set[str]) -> None:
    """Recreate ``src`` at ``dst``: dirs made, files hard-linked (copied when that fails), symlinks
    copied as links; the paths in ``skip`` (relative, POSIX) left out."""
    dst.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        out = dst / rel_dir
        for name in list(dirnames):
            full, rel = here / name, (rel_dir / name).as_posix()
            if rel in skip:
                dirnames.remove(name)
            elif full.is_symlink():
                dirnames.remove(name)  # os.walk lists links to dirs here; they are copied as links
                (out / name).symlink_to(os.readlink(full))
            else:
                (out / name).mkdir(mode=full.stat().st_mode & 0o7777)
        for name in filenames:
            full, rel = here / name, (rel_dir / name).as_posix()
            if rel in skip:
                continue
            if full.is_symlink():
                (out / name).symlink_to(os.readlink(full))
                continue
            try:
                os.link(full, out / name)
            except OSError:
                shutil.copy2(full, out / name)


def _legacy_links(state_dir: Path, release: Path) -> list[PurePosixPath]:
    """Links an old release holds to ``<state>/shared/...`` (it was built before shared dirs were per
    environment): their paths in the release."""
    root = shared_root(state_dir)
    found: list[PurePosixPath] = []
    for dirpath, dirnames, filenames in os.walk(release):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            if not full.is_symlink():
                continue
            target = Path(os.path.normpath(full.parent / os.readlink(full)))
            with contextlib.suppress(ValueError):
                target.relative_to(root)
                found.append(PurePosixPath(full.relative_to(release).as_posix()))
    return found
