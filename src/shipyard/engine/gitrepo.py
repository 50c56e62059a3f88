"""Read-only git plumbing for releases: resolve refs, describe commits, stream archives.

Everything runs ``git -C <project_dir>``; when the project lives in a subdirectory of its repository,
git scopes ``archive`` to that subdirectory, so a release holds the project's files only.
Failures become ``BadInput`` (not a repository, git missing) or ``NotFound`` (unknown ref).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.errors import BadInput, NotFound, ShipyardError

GIT_TIMEOUT_S = 60.0

# Fields are NUL-separated and records RS-separated: neither can occur in a commit message git stores.
_FIELDS = "%H%x00%h%x00%an <%ae>%x00%ct%x00%B"
_RECORD_SEP = "\x1e"


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    message: str  # the full message, trailing whitespace stripped
    author: str  # "Name <email>"
    committed_at: float  # seconds since the epoch

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Never prompt, and keep git's messages in English for the translation below.
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANG="C")
    return env


def git_argv(project_dir: Path, *args: str) -> list[str]:
    return ["git", "-C", str(project_dir), *args]


def run_git(project_dir: Path, *args: str) -> str:
    """Run one git command and return its stdout; a failure is a ShipyardError with git's message."""
    try:
        proc = subprocess.run(
            git_argv(project_dir, *args),
            capture_output=True,
            text=True,
            env=_env(),
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BadInput("git is not installed (needed to build releases)") from exc
    except subprocess.TimeoutExpired as exc:
        raise ShipyardError(f"git {args[0]} timed out after {GIT_TIMEOUT_S:.0f}s in {project_dir}") from exc
    if proc.returncode != 0:
        raise ShipyardError(f"git {args[0]} failed in {project_dir}: {proc.stderr.strip()}")
    return proc.stdout


def repo_root(project_dir: Path) -> Path:
    """The top of the git work tree holding project_dir; BadInput when there is none."""
    if not project_dir.is_dir():
        raise BadInput(f"project directory {project_dir} does not exist")
    try:
        out = run_git(project_dir, "rev-parse", "--show-toplevel")
    except BadInput:
        raise
    except ShipyardError as exc:
        if "not a git repository" not in exc.message:
            raise BadInput(exc.message) from exc  # e.g. git's "dubious ownership" refusal
        raise BadInput(f"{project_dir} is not inside a git repository (run `git init` and commit first)") from exc
    return Path(out.strip())


def _parse_commits(out: str) -> list[Commit]:
    commits: list[Commit] = []
    for record in out.split(_RECORD_SEP):
        record = record.strip("\n")
        if not record:
            continue
        sha, short, author, ct, message = record.split("\x00", 4)
        commits.append(Commit(sha=sha, short=short, message=message.rstrip(), author=author, committed_at=float(ct)))
    return commits


def resolve_ref(project_dir: Path, ref: str) -> Commit:
    """The commit a ref (branch, tag, sha, ``HEAD~2``...) names."""
    root = repo_root(project_dir)
    # A leading dash would be read as an option by git.
    if not ref or ref.startswith("-") or "\x00" in ref:
        raise BadInput(f"invalid git ref {ref!r}")
    try:
        sha = run_git(project_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except ShipyardError as exc:
        raise NotFound(f"ref '{ref}' not found in {root}") from exc
    return describe(project_dir, sha)


def describe(project_dir: Path, sha: str) -> Commit:
    out = run_git(project_dir, "log", "-1", f"--format={_FIELDS}", sha, "--")
    commits = _parse_commits(out)
    if not commits:
        raise NotFound(f"commit {sha} not found in {project_dir}")
    return commits[0]


def log_range(project_dir: Path, old_sha: str, new_sha: str, limit: int) -> list[Commit]:
    """Commits reachable from new_sha but not old_sha, newest first, at most ``limit``."""
    out = run_git(
        project_dir, "log", f"--max-count={limit}", f"--format={_RECORD_SEP}{_FIELDS}", f"{old_sha}..{new_sha}", "--"
    )
    return _parse_commits(out)


def archive_argv(project_dir: Path, sha: str) -> list[str]:
    """argv streaming a tar of the commit, scoped to project_dir when that is a subdirectory.

    A commit (not a tree) is archived so every entry's mtime is the commit time: builds of the same
    commit then produce byte-identical outputs (e.g. .pyc headers), keeping content hashes stable.
    """
    return git_argv(project_dir, "archive", "--format=tar", sha)


def archive_env() -> dict[str, str]:
    return _env()
