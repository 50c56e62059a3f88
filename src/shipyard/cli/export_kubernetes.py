"""shipyard export kubernetes: the manifests an environment's next release would apply, secrets masked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to export.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write one YAML file per object into this directory.")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Git ref the release is made of (default HEAD).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Write the Kubernetes objects of an environment (Secret values shown as (hidden))."""
    import yaml

    from shipyard.cli.app import AppContext
    from shipyard.cli.kube_deploy import new_release, release_input
    from shipyard.engine.kube.diff import mask_secret
    from shipyard.engine.kube.render import release_job, render

    app = AppContext.of(ctx)
    envspec = app.env(env)
    inp = release_input(app, env, new_release(app, ref))
    if envspec.strategy == "canary":  # the Rollout and AnalysisTemplates (stable = this release: none is known here)
        from shipyard.control.kube.rollouts import render_objects

        objects = render_objects(inp, None)
    else:
        objects = render(inp)
    commands = list(envspec.release if envspec.release is not None else app.spec.app.release)
    job = release_job(inp, commands, app.spec.app.release_timeout)
    objects += [job] if job is not None else []
    masked = [mask_secret(m) for m in objects]
    if json_out:
        app.print_json({"env": env, "release": inp.release, "objects": masked})
        return
    if out is None:
        app.echo(yaml.safe_dump_all(masked, sort_keys=False).rstrip())
        return
    out.mkdir(parents=True, exist_ok=True)
    for m in masked:
        path = out / f"{m['kind'].lower()}-{m['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(m, sort_keys=False))
        app.echo(str(path))
