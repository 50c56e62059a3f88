"""shipyard init: write a commented shipyard.toml for the app in the current git repo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

GITIGNORED = (".shipyard", ".shipyard/", "/.shipyard", "/.shipyard/", ".shipyard/*", "/.shipyard/*")


def command(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing shipyard.toml.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="App name (default: the directory's).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Command that starts one instance (uses $PORT).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write a commented shipyard.toml for the app here (FastAPI, Flask, Django detected); ignore .shipyard/."""
    from shipyard.cli.app import AppContext
    from shipyard.cli.detect import detect, free_ports
    from shipyard.engine.alerting.rules import DEFAULTS
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
    found = detect(here)
    notes = [] if run is not None else list(found.notes)
    run = found.run if run is None else run
    staging, production = free_ports((8200, 8300))
    target.write_text(render_init_template(app_name, run, (staging, production)))
    load_spec(target)  # what we write must load
    gitignore = _ignore_state(here / ".gitignore")
    if json_out:
        app.print_json({"path": str(target), "app": app_name, "run": run, "git": git,
                        "framework": found.framework, "server": found.server, "module": found.module,
                        "ports": {"staging": staging, "production": production}, "gitignore": gitignore,
                        "notes": notes})
        return
    app.echo(f"wrote {target} (app '{app_name}', run: {run}); edit it, then 'shipyard up --detach'")
    if found.framework:
        app.echo(f"  detected a {found.framework} app ({found.module}), served by {found.server}")
    app.echo(f"  router ports: staging {staging}, production {production} (free now)")
    app.echo("  alert rules on by default (see [metrics] in the file): "
             + ", ".join(f"{d.name} ({d.expr})" for d in DEFAULTS))
    if gitignore != "present":
        how = "created with .shipyard/" if gitignore == "created" else "added .shipyard/"
        app.echo(f"  .gitignore: {how} (it holds the state, logs, keys and releases)")
    for note in notes:
        app.echo(f"note: {note}")


def _ignore_state(path: Path) -> str:
    """Make sure git ignores ``.shipyard/``: ``present``, ``added`` or ``created``."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        path.write_text(".shipyard/\n")
        return "created"
    if any(line.strip() in GITIGNORED for line in text.splitlines()):
        return "present"
    path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + ".shipyard/\n")
    return "added"
