"""What ``promote``, ``abort``, ``pause`` and ``resume`` share: one call to the running canary."""

from __future__ import annotations

from typing import Any

import typer


def send(ctx: typer.Context, env: str, command: str, json_out: bool) -> None:
    from shipyard.cli.app import AppContext

    app = AppContext.of(ctx)
    app.check_env(env)
    if app.remote is None and app.env(env).target == "kubernetes":  # Argo Rollouts drives it (no control plane)
        from shipyard.cli.kube_canary import control

        raise typer.Exit(control(app, env, command, json_out))
    reply: Any = app.client.call("POST", "/v1/canary", {"env": env, "command": command})
    if json_out:
        app.print_json(reply)
        return
    canary = reply.get("canary") or {}
    app.echo(f"{env}: {reply.get('message')} (canary {canary.get('release')} at {canary.get('weight')}%)")
