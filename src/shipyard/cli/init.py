"""shipyard init: write a commented shipyard.toml for the app in the current git repo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing shipyard.toml.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="App name (default: the directory's).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Command that starts one instance (uses $PORT).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write a commented shipyard.toml for the app in the current directory."""
    from shipyard.cli.app import AppContext
    from shipyard.primitives.spec import load_spec
    from shipyard.primitives.spec.template import render_init_template

    app = AppContext.of(ctx)
    here = Path.cwd()
    target = here / "shipyard.toml"
    if target.exists() and not force:
        app.abort(f"{target} already exists (use --force to overwrite)", 2)
    git = (here / ".git").exists()
    if not git and not json_out:
        app.echo("note: this directory is not a git repository; deploys build releases from git refs")
    app_name = name or "".join(c if c.isalnum() or c == "-" else "-" for c in here.name.lower()).strip("-") or "app"
    if run is None:
        run = _guess_run(here)
    target.write_text(render_init_template(app_name, run))
    load_spec(target)  # what we write must load
    if json_out:
        app.print_json({"path": str(target), "app": app_name, "run": run, "git": git})
        return
    app.echo(f"wrote {target} (app '{app_name}', run: {run}); edit it, then 'shipyard up --detach'")


def _guess_run(here: Path) -> str:
    if (here / "manage.py").exists():
        return "gunicorn -b 127.0.0.1:$PORT $(basename $PWD).wsgi"
    for candidate in ("app.py", "main.py", "server.py"):
        if (here / candidate).exists():
            return f"python3 {candidate}"
    return "python3 app.py"
