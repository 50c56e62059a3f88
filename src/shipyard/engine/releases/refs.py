"""Which commit a ref names, and what changed between two commits (for ``deploy --plan``)."""

from __future__ import annotations

from pathlib import Path

from shipyard.engine import gitrepo
from shipyard.engine.gitrepo import Commit
from shipyard.errors import BadInput, NotFound, ShipyardError


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


