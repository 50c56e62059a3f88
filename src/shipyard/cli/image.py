"""shipyard image build: a release's OCI image for a kubernetes environment, built, pushed, digest recorded."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Build the images that kubernetes environments deploy.", no_args_is_help=True)


@app.command("build")
def build(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Kubernetes environment whose `image` and "
                                                                "`base_image` to use (default: the only one).")] = None,
    ref: Annotated[str | None, typer.Option("--ref", help="Git ref to build (default HEAD).")] = None,
    push: Annotated[bool, typer.Option("--push/--no-push", help="Push to the registry and record the digest.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Build a new release of REF into `<image>:<release id>` with the Docker engine and push it; a kube deploy
    of that release (`deploy --release ID`) then references the image by its digest."""
    from shipyard.cli.app import AppContext
    from shipyard.control.kube.image import Docker, build_image
    from shipyard.primitives.clock import SystemClock

    ap = AppContext.of(ctx)
    kube_envs = sorted(n for n, e in ap.spec.environments.items() if e.target == "kubernetes")
    if env is None:
        if len(kube_envs) != 1:
            ap.abort("give --env: " + (f"the kubernetes environments are {', '.join(kube_envs)}" if kube_envs else
                                       "no environment has target = \"kubernetes\""), 2)
        env = kube_envs[0]
    ap.check_env(env)
    if env not in kube_envs:
        ap.abort(f"--env {env}: not a kubernetes environment (target = \"kubernetes\" builds images)", 2)
    if not json_out:
        ap.echo(f"building the image of {ref or 'HEAD'} for {env}", stderr=True)
    res = build_image(ap.spec, env, project_dir=ap.project.dir, state_dir=ap.project.state_dir, ref=ref or "HEAD",
                      push=push, docker=Docker(), clock=SystemClock(),
                      emit=(lambda line: None) if json_out else (lambda line: ap.echo(f"  {line}", stderr=True)))
    if json_out:
        ap.print_json(res.to_json())
        return
    r = res.rec
    ap.echo(f"release {r.release}: image {r.image} ({r.dockerfile} Dockerfile) built in {r.build_duration_s:.1f}s")
    if r.digest:
        ap.echo(f"pushed in {r.push_duration_s or 0:.1f}s: {r.pinned}")
        ap.echo(f"deploy it: shipyard deploy --env {env} --release {r.release}")
    else:
        ap.echo("not pushed (--no-push): no digest recorded; a deploy references the tag")
