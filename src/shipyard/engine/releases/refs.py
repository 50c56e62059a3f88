"""Which commit a ref names, and what changed between two commits (for ``deploy --plan``)."""

from __future__ import annotations

from pathlib import Path

from shipyard.engine import gitrepo
from shipyard.engine.gitrepo import Commit
from shipyard.errors import BadInput, NotFound, ShipyardError


def resolve_ref(project_dir: Path, ref: str) -> Commit:
    """The commit ``ref`` names. NotFound for an unknown ref, BadInput outside a git repository."""
    return gitrepo.resolve_ref(project_dir, ref)


def fetch_ref(project_dir: Path, ref: str) -> Commit:
    """A ref the checkout does not have, fetched from its ``origin`` remote: how a pipeline's commit
    (``deploy --ref "$GITHUB_SHA"`` over SHIPYARD_URL) reaches the control plane's checkout. NotFound when
    there is no origin or it does not have the ref either."""
    root = gitrepo.repo_root(project_dir)
    if not ref or ref.startswith("-") or "\x00" in ref:
        raise BadInput(f"invalid git ref {ref!r}")
    try:
        gitrepo.run_git(project_dir, "remote", "get-url", "origin")
    except ShipyardError:
        raise NotFound(f"ref '{ref}' not found in {root} (and it has no remote 'origin' to fetch it from)") from None
    try:
        gitrepo.run_git(project_dir, "fetch", "--quiet", "--no-tags", "origin", ref)
    except ShipyardError as exc:
        raise NotFound(f"ref '{ref}' not found in {root}, nor fetched from origin: {exc.message}") from None
    try:
        return gitrepo.resolve_ref(project_dir, ref)
    except NotFound:  # a branch of origin's that is not a local one: what was just fetched
        return gitrepo.resolve_ref(project_dir, "FETCH_HEAD")


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


