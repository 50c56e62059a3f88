"""What ``deploy`` says about a dirty working tree: which of it a deploy uses.

A release is built from a commit (``git archive``), so uncommitted changes to the code are not in it;
shipyard.toml, though, is read from the working tree by the control plane, so its uncommitted changes
apply. Either surprise is said once, on stderr (stdout stays the deploy's output or JSON document).
"""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import ShipyardError

SHOWN = 5


def dirty_paths(project_dir: Path) -> tuple[list[str], str] | None:
    """The project's uncommitted paths (relative to the repository) and its prefix in the repository;
    None outside a git repository (the deploy itself says so)."""
    from shipyard.engine.gitrepo import run_git

    try:
        prefix = run_git(project_dir, "rev-parse", "--show-prefix").strip()
        out = run_git(project_dir, "status", "--porcelain=v1", "-z", "--untracked-files=normal", "--", ".")
    except ShipyardError:
        return None
    paths: list[str] = []
    records = iter(out.split("\0"))
    for rec in records:
        if len(rec) < 4:
            continue
        if rec[0] in "RC":
            next(records, None)  # a rename's source path follows as its own record
        path = rec[3:]
        if not path.startswith(prefix + ".shipyard/"):  # shipyard's own state (not ignored yet)
            paths.append(path)
    return paths, prefix


def dirty_warning(project_dir: Path, spec_file: Path, ref: str | None, *, building: bool) -> str | None:
    """One warning for a deploy from a dirty working tree, or None when it is clean."""
    from shipyard.engine.gitrepo import run_git

    found = dirty_paths(project_dir)
    if found is None or not found[0]:
        return None
    paths, prefix = found
    spec = prefix + spec_file.name
    code = [p for p in paths if p != spec]
    spec_dirty = spec in paths
    parts: list[str] = []
    if code and building:
        try:
            short = run_git(project_dir, "rev-parse", "--short", f"{ref or 'HEAD'}^{{commit}}").strip()
        except ShipyardError:
            short = ref or "HEAD"
        listed = ", ".join(code[:SHOWN]) + (f" and {len(code) - SHOWN} more" if len(code) > SHOWN else "")
        parts.append(f"uncommitted changes ({listed}) are not deployed: the release is built from commit "
                     f"{short} ({ref or 'HEAD'})")
    if spec_dirty:
        parts.append(f"{spec_file.name} has uncommitted changes and they apply: it is read from the working tree")
    return "; ".join(parts) or None
