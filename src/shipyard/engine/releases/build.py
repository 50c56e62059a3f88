"""``build_release``: a git ref → a complete release directory (archive, build, hash, meta)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from shipyard.engine import gitrepo
from shipyard.engine.gitrepo import Commit
from shipyard.engine.releases.cache import CacheRule, cache_key, check_rule, restore, save
from shipyard.engine.releases.catalog import (
    BUILD_LOG,
    RELEASE_META,
    BuiltRelease,
    new_release_id,
    release_dir,
    write_meta,
)
from shipyard.engine.releases.commands import run_build
from shipyard.engine.releases.content import content_hash
from shipyard.engine.releases.refs import resolve_ref
from shipyard.errors import BadInput, DeployFailed, NotFound
from shipyard.primitives.baseenv import base_environment
from shipyard.primitives.clock import Clock

DEFAULT_BUILD_TIMEOUT_S = 600.0
ARCHIVE_TIMEOUT_S = 300.0


def build_release(
    *,
    project_dir: Path,
    state_dir: Path,
    ref: str,
    build_cmds: list[str],
    shared: list[str],
    clock: Clock,
    release_id: str | None = None,
    on_output: Callable[[str], None] | None = None,
    build_timeout: float = DEFAULT_BUILD_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
    cache: Sequence[CacheRule] = (),
) -> BuiltRelease:
    """Build a release of ``ref``; blocking (run it in a worker thread from async code).

    ``on_output`` receives each build-log line (without newline) in the calling thread.
    ``build_timeout`` applies to each build command. ``env`` is the build commands' environment
    (default: the base an instance gets, ``baseenv.base_environment``, with ``PIP_CACHE_DIR`` under
    ``<state>/cache/pip``), to which SHIPYARD_RELEASE and SHIPYARD_COMMIT are added. ``cache``: the
    ``app.build_cache`` rules (``cache``), restored before the commands and saved after a miss.
    Raises NotFound (ref), BadInput (not a repo, bad shared path, taken id), DeployFailed (build).
    """
    started = clock.monotonic()
    project_dir = project_dir.absolute()
    state_dir = state_dir.absolute()
    commit = resolve_ref(project_dir, ref)
    shared_paths = [_shared_path(name) for name in shared]
    for rule in cache:
        check_rule(rule)
    if release_id is None:
        release_id = new_release_id(commit, clock.time(), lambda rid: release_dir(state_dir, rid).exists())
    work = release_dir(state_dir, release_id)
    work.parent.mkdir(parents=True, exist_ok=True)
    try:
        work.mkdir(mode=0o755)  # claims the id, also against a concurrent build
    except FileExistsError as exc:
        raise BadInput(f"release {release_id} already exists") from exc
    try:
        _unpack(project_dir, commit, ref, work)
        _clear_shared(work, shared_paths)
        header: list[str] = []
        python = shutil.which("python3", path=(env or base_environment(work)).get("PATH"))
        keys = [cache_key(work, rule, os.path.realpath(python) if python else None) for rule in cache]
        missed = [(rule, key) for rule, key in zip(cache, keys, strict=True)
                  if not restore(state_dir, work, rule, key, header.append)]
        if env is None:
            # After the restore: a cached .venv/bin comes first on PATH.
            build_env = base_environment(work)
            build_env["PIP_CACHE_DIR"] = str(state_dir / "cache" / "pip")
        else:
            build_env = dict(env)
        build_env.update(SHIPYARD_RELEASE=release_id, SHIPYARD_COMMIT=commit.sha)
        run_build(build_cmds, work, build_env, on_output, build_timeout, clock, header=header)
        footer: list[str] = []
        for rule, key in missed:
            save(state_dir, work, rule, key, footer.append)
        _append_log(work / BUILD_LOG, footer, on_output)
        digest = content_hash(work, exclude=[BUILD_LOG, RELEASE_META, *(str(p) for p in shared_paths)])
        release = BuiltRelease(
            id=release_id,
            path=work,
            commit=commit,
            ref=ref,
            build_duration_s=round(clock.monotonic() - started, 3),
            content_hash=digest,
            build_log=work / BUILD_LOG,
            built_at=clock.time(),
            shared=tuple(str(p) for p in shared_paths),
        )
        write_meta(release)  # last: its appearance is what makes the release complete
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return release


def _shared_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name.strip().rstrip("/"))
    if not name.strip() or path.is_absolute() or ".." in path.parts or str(path) in (".", ""):
        raise BadInput(f"app.shared: {name!r} must be a relative path inside the release (no '..')")
    return path


def _unpack(project_dir: Path, commit: Commit, ref: str, dest: Path) -> None:
    """Stream ``git archive`` into dest: no temporary tarball is written."""
    argv = gitrepo.archive_argv(project_dir, commit.sha)
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errf, env=gitrepo.archive_env())
        killer = threading.Timer(ARCHIVE_TIMEOUT_S, proc.kill)
        killer.daemon = True
        killer.start()
        failure: Exception | None = None
        try:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                # "data" refuses absolute paths, links leaving the release and device files.
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as exc:
            failure = exc
        finally:
            killer.cancel()
            if proc.stdout is not None:
                proc.stdout.close()
            rc = proc.wait()
        errf.seek(0)
        stderr = errf.read().decode("utf-8", "replace").strip()
    if rc != 0:
        if "untracked" in stderr:
            raise NotFound(f"{project_dir.name}/ does not exist at ref '{ref}' ({commit.short})")
        raise DeployFailed(f"git archive of {commit.short} failed: {stderr or f'exit {rc}'}") from failure
    if failure is not None:
        raise DeployFailed(f"could not unpack {commit.short} into {dest.parent}: {failure}") from failure


def _append_log(log: Path, lines: list[str], on_output: Callable[[str], None] | None) -> None:
    if not lines:
        return
    with log.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    for line in lines:
        if on_output is not None:
            on_output(line)


def _clear_shared(release_dir: Path, paths: list[PurePosixPath]) -> None:
    """Whatever the archive has at a shared path is not part of the release: each environment's
    instances find their own shared dir there (``workdir``)."""
    for rel in paths:
        path = release_dir / rel
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
