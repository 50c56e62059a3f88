"""shipyard run: a one-off command in a release, with the environment's configuration and secrets."""

from __future__ import annotations

from typing import Annotated

import typer

CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment whose configuration the command gets.")],
    release: Annotated[str | None, typer.Option("--release", help="Release to run in (default: the serving one).")]
    = None,
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Give it your terminal (a shell).")]
    = False,
    timeout: Annotated[str | None, typer.Option("--timeout", help="Kubernetes: the Job's deadline (default 1h).")]
    = None,
    keep: Annotated[bool, typer.Option("--keep", help="Kubernetes: keep the Job after it ends.")] = False,
) -> None:
    """Run COMMAND (after --) in a release; exits with the command's exit code."""
    import subprocess
    import sys

    from shipyard.cli.app import AppContext

    app = AppContext.of(ctx)
    argv = list(ctx.args)
    if not argv:
        app.abort("give the command after --: shipyard run --env ENV -- python manage.py migrate", 2)
    if app.remote is None:
        app.check_env(env)
        if app.env(env).target == "kubernetes":  # a Job on the cluster (cli/kube_run.py), no control plane
            from shipyard.cli.kube_run import run as kube_run

            raise typer.Exit(kube_run(app, env, argv, release=release, interactive=interactive, timeout=timeout,
                                      keep=keep))
    if timeout is not None or keep:
        app.abort("--timeout and --keep apply to kubernetes environments only", 2)
    body = {"env": env, "release": release, "argv": argv, "interactive": interactive}
    if interactive and app.remote is not None:
        # The command runs there, under a pseudo-terminal; this terminal is carried to it (cli/ttyclient.py).
        from shipyard.cli.ttyclient import drive
        from shipyard.primitives.ttyframes import PROTOCOL

        sock, early = app.client.upgrade("/v1/run", {**body, "interactive": "remote"}, PROTOCOL)
        raise typer.Exit(_shell_code(drive(sock, early, app.client.where)))
    if interactive:
        job = app.client.call("POST", "/v1/run", body)
        try:
            code = subprocess.run(job["argv"], cwd=job["cwd"], env=job["environ"], check=False).returncode
        except OSError as exc:
            code = 127
            app.warn(f"cannot run {argv[0]!r}: {exc.strerror}")
        app.client.call("POST", "/v1/run/done", {"run": job["run"], "exit_code": code})
        raise typer.Exit(code)
    code = 1
    for ev in app.client.stream("/v1/run", body):
        if ev.get("event") == "output":
            sys.stdout.write(ev["line"] + "\n")
            sys.stdout.flush()
        elif ev.get("event") == "exit":
            code = _shell_code(int(ev["code"]))
            if ev.get("error"):
                app.warn(str(ev["error"]))
    raise typer.Exit(code)


def _shell_code(code: int) -> int:
    """A program killed by signal N (reported as -N) exits 128 + N, as a shell says it."""
    return code if code >= 0 else 128 - code
