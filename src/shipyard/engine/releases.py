"""Immutable releases built from git refs, kept under ``<state_dir>/releases/<id>/``.

A build resolves the ref, streams ``git archive <sha>`` straight into the release directory, links the
``app.shared`` dirs (``<state_dir>/shared/<name>/``, created once and kept across releases) into it,
runs the ``app.build`` commands inside it through the shell, hashes the result and records it in
``.shipyard-release.json``.

The build runs in the release's final directory, not in a temporary one renamed at the end: builds
bake absolute paths into what they make (a virtualenv's script shebangs, generated configs), which a
rename would break. Completeness is marked instead: ``.shipyard-release.json`` is written (atomically)
last, and only a directory holding it is a release. A failed
build removes its directory; one interrupted by a crash is removed by ``remove_leftovers``.

Release ids are ``r<UTC yyyymmddHHMMSS>-<short sha>`` (``-2``, ``-3``... appended if that id is taken):
unique, readable, and sorting them as strings sorts them by build time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from shipyard.engine import gitrepo
from shipyard.engine.gitrepo import Commit
from shipyard.errors import BadInput, DeployFailed, NotFound, ShipyardError
from shipyard.primitives.clock import Clock

__all__ = [
    "BUILD_LOG",
    "RELEASE_META",
    "BuiltRelease",
    "Commit",
    "build_release",
    "commits_between",
    "content_hash",
    "new_release_id",
    "prune_releases",
    "releases_to_prune",
    "remove_leftovers",
    "resolve_ref",
]

BUILD_LOG = ".shipyard-build.log"
RELEASE_META = ".shipyard-release.json"
DEFAULT_BUILD_TIMEOUT_S = 600.0
ARCHIVE_TIMEOUT_S = 300.0
_TAIL_LINES = 20
_DELETING = ".deleting-"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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


def resolve_ref(project_dir: Path, ref: str) -> Commit:
    """The commit ``ref`` names. NotFound for an unknown ref, BadInput outside a git repository."""
    return gitrepo.resolve_ref(project_dir, ref)


def commits_between(project_dir: Path, old_sha: str, new_sha: str, limit: int = 20) -> list[Commit]:
    """Commits in new_sha that old_sha lacks, newest first (for ``deploy --plan``).

    Empty when new_sha is an ancestor of old_sha (a rollback): call it with the arguments swapped to
    list what a rollback takes away.
    """
    gitrepo.repo_root(project_dir)
    for sha in (old_sha, new_sha):
        if not sha or sha.startswith("-"):
            raise BadInput(f"invalid commit {sha!r}")
    try:
        return gitrepo.log_range(project_dir, old_sha, new_sha, limit)
    except BadInput:
        raise
    except ShipyardError as exc:
        raise NotFound(f"cannot list commits {old_sha[:12]}..{new_sha[:12]}: {exc.message}") from exc


def new_release_id(releases_dir: Path, commit: Commit, clock: Clock) -> str:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(clock.time()))
    base = f"r{stamp}-{commit.short}"
    candidate, n = base, 1
    while (releases_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


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
) -> BuiltRelease:
    """Build a release of ``ref``; blocking (run it in a worker thread from async code).

    ``on_output`` receives each build-log line (without newline) in the calling thread.
    ``build_timeout`` applies to each build command. ``env`` is the build commands' environment
    (default: this process's), to which SHIPYARD_RELEASE and SHIPYARD_COMMIT are added.
    Raises NotFound (ref), BadInput (not a repo, bad shared path, taken id), DeployFailed (build).
    """
    started = clock.monotonic()
    project_dir = project_dir.absolute()
    state_dir = state_dir.absolute()
    commit = resolve_ref(project_dir, ref)
    shared_paths = [_shared_path(name) for name in shared]
    releases_dir = state_dir / "releases"
    releases_dir.mkdir(parents=True, exist_ok=True)
    if release_id is None:
        release_id = new_release_id(releases_dir, commit, clock)
    elif not _ID_RE.match(release_id):
        raise BadInput(f"invalid release id {release_id!r} (letters, digits, '.', '_' and '-')")
    work = releases_dir / release_id
    try:
        work.mkdir(mode=0o755)  # claims the id, also against a concurrent build
    except FileExistsError as exc:
        raise BadInput(f"release {release_id} already exists") from exc
    try:
        _unpack(project_dir, commit, ref, work)
        _link_shared(state_dir / "shared", work, shared_paths)
        build_env = dict(os.environ if env is None else env)
        build_env.update(SHIPYARD_RELEASE=release_id, SHIPYARD_COMMIT=commit.sha)
        _run_build(build_cmds, work, build_env, on_output, build_timeout, clock)
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
        )
        # Written last and renamed into place: its appearance is what makes the release complete.
        meta_tmp = work / f"{RELEASE_META}.tmp"
        meta_tmp.write_text(json.dumps(_to_json(release), indent=2) + "\n", encoding="utf-8")
        os.rename(meta_tmp, work / RELEASE_META)
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


def _link_shared(shared_root: Path, release_dir: Path, paths: list[PurePosixPath]) -> None:
    for rel in paths:
        target = shared_root / rel
        target.mkdir(parents=True, exist_ok=True)
        link = release_dir / rel
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)  # whatever the archive had there is replaced by the shared dir
        link.parent.mkdir(parents=True, exist_ok=True)
        # Relative, so the project (and its .shipyard/ with it) can move.
        link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)


def _run_build(
    cmds: list[str],
    cwd: Path,
    env: dict[str, str],
    on_output: Callable[[str], None] | None,
    timeout: float,
    clock: Clock,
) -> None:
    with (cwd / BUILD_LOG).open("w", encoding="utf-8") as log:

        def emit(line: str) -> None:
            log.write(line + "\n")
            log.flush()
            if on_output is not None:
                on_output(line)

        for cmd in cmds:
            emit(f"$ {cmd}")
            t0 = clock.monotonic()
            tail: deque[str] = deque(maxlen=_TAIL_LINES)
            rc, timed_out = _run_one(cmd, cwd, env, timeout, emit, tail)
            took = clock.monotonic() - t0
            if timed_out:
                emit(f"[timed out after {timeout:g}s]")
                raise DeployFailed(f"build failed: `{cmd}` timed out after {timeout:g}s{_tail_text(tail)}")
            emit(f"[exit {rc} after {took:.1f}s]")
            if rc != 0:
                how = f"was killed by signal {-rc}" if rc < 0 else f"exited {rc}"
                raise DeployFailed(f"build failed: `{cmd}` {how}{_tail_text(tail)}")


def _run_one(
    cmd: str,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    emit: Callable[[str], None],
    tail: deque[str],
) -> tuple[int, bool]:
    # Own session: a timeout kills everything the command started, not just the shell.
    proc = subprocess.Popen(
        cmd,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        _killpg(proc.pid)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        out: IO[bytes] | None = proc.stdout
        assert out is not None
        for raw in out:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tail.append(line)
            emit(line)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # interrupted (e.g. on_output raised): leave nothing running
            _killpg(proc.pid)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return rc, timed_out.is_set()


def _killpg(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail_text(tail: deque[str]) -> str:
    lines = [line for line in tail if line.strip()]
    if not lines:
        return " (no output)"
    return " — last lines:\n" + "\n".join(f"  {line}" for line in lines)


def content_hash(root: Path, exclude: Iterable[str] = ()) -> str:
    """``sha256:<hex>`` over the sorted relative paths, kinds, exec bits and contents under root.

    Symlinks are hashed by their target text and never followed; ``exclude`` names relative paths
    (POSIX form) left out entirely, with everything under them.
    """
    skip = {str(PurePosixPath(p)) for p in exclude}
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            if rel in skip:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if full.is_symlink():
                entries.append((rel, "L " + os.readlink(full)))
            elif full.is_dir():
                entries.append((rel, "D"))
            else:
                mode = "x" if full.stat().st_mode & 0o100 else "-"
                entries.append((rel, f"F {mode} {_file_sha256(full)}"))
    h = hashlib.sha256()
    for rel, desc in sorted(entries):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + desc.encode("utf-8", "surrogateescape") + b"\n")
    return "sha256:" + h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _to_json(release: BuiltRelease) -> dict[str, Any]:
    data = asdict(release)
    data["path"] = str(release.path)
    data["build_log"] = str(release.build_log)
    return data


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
    releases_dir = state_dir.absolute() / "releases"
    doomed = releases_to_prune(all_ids_newest_first, keep_ids, keep_newest)
    for release_id in doomed:
        if not _ID_RE.match(release_id):
            continue  # never let an odd id address anything outside releases/
        path = releases_dir / release_id
        if not path.exists():
            continue
        # Renamed away first so a half-deleted release never looks complete.
        trash = releases_dir / f"{_DELETING}{release_id}-{os.getpid()}"
        os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    return doomed


def remove_leftovers(state_dir: Path) -> list[str]:
    """Remove what a crash left in releases/: unfinished builds (no metadata) and half-done deletions.

    Call it only when no build is running (at control-plane start).
    """
    releases_dir = state_dir.absolute() / "releases"
    if not releases_dir.is_dir():
        return []
    removed: list[str] = []
    for entry in releases_dir.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            continue
        if entry.name.startswith(_DELETING) or not (entry / RELEASE_META).is_file():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return sorted(removed)
