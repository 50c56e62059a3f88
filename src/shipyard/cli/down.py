"""shipyard down: stop every instance, the router and the control plane."""

from __future__ import annotations

import time
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Stop all environments of this project, the router and the control plane."""
    import psutil

    from shipyard.cli.app import AppContext
    from shipyard.errors import ControlPlaneUnavailable

    app = AppContext.of(ctx)
    try:
        client = app.local_client  # this project's control plane, never a remote one (SHIPYARD_URL)
    except ControlPlaneUnavailable:
        if json_out:
            app.print_json({"stopped": False, "was_running": False})
        else:
            app.echo("the control plane is not running")
        return
    pid = int(client.info()["pid"])  # type: ignore[index]
    client.call("POST", "/v1/down", {"all": True})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and psutil.pid_exists(pid):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    if json_out:
        app.print_json({"stopped": True, "was_running": True, "pid": pid})
    else:
        app.echo("stopped: instances, router and control plane; `shipyard up` brings every environment back on "
                 "its last serving release")
