"""shipyard up: start the control plane for the project in the current directory."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import Annotated

import typer


def command(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background; return once ready.")] = False,
    port: Annotated[int, typer.Option("--port", help="Control API port on 127.0.0.1 (default: any free).")] = 0,
) -> None:
    """Start the control plane (API, deploy engine, supervisor, router)."""
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.control.client import ControlClient
    from shipyard.control.paths import Paths
    from shipyard.errors import ControlPlaneUnavailable, ShipyardError

    project = find_project()
    load_project_spec(project)
    paths = Paths(project.dir)
    try:
        client = ControlClient(paths)
        print(f"control plane already running (pid {client.info()['pid']}, port {client.port})")  # type: ignore[index]
        return
    except ControlPlaneUnavailable:
        pass
    if not detach:
        from shipyard.control.daemon import main

        main(["--project", str(project.dir), "--port", str(port)])
        return
    paths.ensure()
    paths.daemon_log.parent.mkdir(parents=True, exist_ok=True)
    rfd, wfd = os.pipe()
    with open(paths.daemon_log, "ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard.control.daemon", "--project", str(project.dir), "--port", str(port),
             "--ready-fd", str(wfd)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True, pass_fds=(wfd,),
            cwd=str(project.dir))
    os.close(wfd)
    deadline = time.monotonic() + 60
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([rfd], [], [], 0.2)
        if r:
            chunk = os.read(rfd, 64)
            buf += chunk
            if b"ready" in buf or not chunk:
                break
        if proc.poll() is not None:
            break
    os.close(rfd)
    if b"ready" not in buf:
        tail = paths.daemon_log.read_text(errors="replace").splitlines()[-5:]
        raise ShipyardError("the control plane did not start:\n" + "\n".join(tail))
    client = ControlClient(paths)
    print(f"control plane ready (pid {proc.pid}, API on 127.0.0.1:{client.port}); logs: {paths.daemon_log}")
