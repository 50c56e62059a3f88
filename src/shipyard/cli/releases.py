"""shipyard releases: the releases built for this project, newest first."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False) -> None:
    """List releases (id, commit, message, build time)."""
    from rich.console import Console
    from rich.table import Table

    from shipyard.cli.common import find_project, print_json
    from shipyard.primitives.store import open_store

    project = find_project()
    store = open_store(None, project.state_dir)
    try:
        envs = store.list_environments()
        rels = store.list_releases()
    finally:
        store.close()
    rows: list[dict[str, Any]] = [{"release": r.id, "commit": r.commit, "ref": r.ref, "message": r.message, "author": r.author,
             "created_at": r.created_at, "build_duration_s": r.build_duration_s, "content_hash": r.content_hash,
             "serving": [e.name for e in envs if e.current_release == r.id], "on_disk":
             (project.state_dir / "releases" / r.id).is_dir()} for r in rels]
    if json_out:
        print_json(rows)
        return
    t = Table(box=None)
    for col in ("release", "commit", "built", "build", "serving", "message"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["release"], r["commit"][:10], time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
                  f"{r['build_duration_s']:.1f}s", ", ".join(r["serving"]) or ("" if r["on_disk"] else "(pruned)"),
                  (r["message"] or "")[:60])
    Console(highlight=False).print(t)
