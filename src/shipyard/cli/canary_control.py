"""What ``promote``, ``abort``, ``pause`` and ``resume`` share: one call to the running canary."""

from __future__ import annotations

from typing import Any

import typer


def send(env: str, command: str, json_out: bool) -> None:
    from shipyard.cli.common import find_project, load_project_spec, print_json
    from shipyard.control.client import ControlClient
    from shipyard.control.paths import Paths

    project = find_project()
    load_project_spec(project).env(env)
    client = ControlClient(Paths(project.dir))
    reply: Any = client.call("POST", "/v1/canary", {"env": env, "command": command})
    if json_out:
        print_json(reply)
        return
    canary = reply.get("canary") or {}
    typer.echo(f"{env}: {reply.get('message')} (canary {canary.get('release')} at {canary.get('weight')}%)")
