"""shipyard deploy: build (if needed) and roll out a release to an environment."""

from __future__ import annotations

from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to deploy to.")],
    ref: Annotated[str | None, typer.Option("--ref", help="Git ref to build and deploy (default HEAD).")] = None,
    release: Annotated[str | None, typer.Option("--release", help="Deploy an existing release id.")] = None,
    from_env: Annotated[str | None, typer.Option("--from", help="Deploy the release serving this environment.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="rolling, blue-green or canary.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Show the steps and changes; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    override_window: Annotated[bool, typer.Option("--override-window",
                                                  help="Deploy outside the deploy windows (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (recorded with --override-window).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Where approval is required: print the waiting "
                                                          "deployment's id and return.")] = False,
) -> None:
    """Deploy a git ref (or an existing release) to an environment."""
    from shipyard.cli.app import AppContext
    from shipyard.cli.render import follow

    app = AppContext.of(ctx)
    if sum(x is not None for x in (ref, release, from_env)) > 1:
        app.abort("give one of --ref, --release or --from", 2)
    if strategy and strategy not in ("rolling", "blue-green", "canary"):
        app.abort(f"unknown strategy '{strategy}' (expected rolling, blue-green or canary)", 2)
    if override_window and not reason:
        app.abort("--override-window needs --reason TEXT (it is recorded)", 2)
    app.check_env(env)  # bad config or unknown environment: exit 2 before anything else
    if app.remote is None and app.env(env).target == "kubernetes":
        from shipyard.cli.kube_deploy import deploy as kube_deploy

        if strategy not in (None, app.env(env).strategy):
            app.abort("a kubernetes environment deploys with its own strategy (docs/kubernetes.md)", 2)
        raise typer.Exit(kube_deploy(app, env, ref, plan, json_out, release=release, from_env=from_env))
    app.check_receiver_secrets([env])  # its notifications could not be sent (a kube deploy sends none)
    if app.remote is None:  # a remote control plane builds from its own checkout
        from shipyard.cli.worktree import dirty_warning

        # On stderr, with --json too: the document on stdout stays whole.
        warning = dirty_warning(app.project.dir, app.project.spec_file, ref, building=release is None)
        if warning:
            app.warn(warning)
    events = app.client.stream("/v1/deploy", {"env": env, "ref": ref, "release": release, "strategy": strategy,
                                              "plan": plan, "override_window": override_window, "reason": reason,
                                              "from": from_env, "detach": detach})
    raise typer.Exit(follow(app, events, as_json=json_out, plan_only=plan, detach=detach))
