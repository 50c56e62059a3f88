"""shipyard up: start the control plane for the project in the current directory."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext
    from shipyard.cli.client import ControlClient


def command(
    ctx: typer.Context,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run in the background; return once ready.")] = False,
    port: Annotated[int, typer.Option("--port", help="Control API port on 127.0.0.1 (default: any free).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document (with --detach).")] = False,
) -> None:
    """Start the control plane (API, deploy engine, supervisor, router)."""
    from shipyard.cli.app import AppContext
    from shipyard.cli.client import ControlClient
    from shipyard.errors import ControlPlaneUnavailable, ShipyardError

    app = AppContext.of(ctx)
    app.spec  # noqa: B018 - a bad spec is reported (exit 2) before anything starts
    _check_receiver_secrets(app)
    paths = app.paths
    if _report_running(app, json_out, ControlClient, ControlPlaneUnavailable):
        return
    problem = _port_problem(port)
    if problem:
        app.abort(problem, 2)  # before anything starts: a bad port leaves no router behind
    # What `up` itself writes under .shipyard/ (the control plane's log) is the project user's alone.
    os.umask(0o077)
    argv = [sys.executable, "-m", "shipyard.control.daemon", "--project", str(app.project.dir), "--port", str(port)]
    if not detach:
        # The control plane is its own program (the CLI never imports it): become it.
        sys.stdout.flush()
        os.chdir(app.project.dir)
        os.execv(sys.executable, argv)
    paths.ensure()
    paths.daemon_log.parent.mkdir(parents=True, exist_ok=True)
    rfd, wfd = os.pipe()
    with open(paths.daemon_log, "ab") as logf:
        proc = subprocess.Popen([*argv, "--ready-fd", str(wfd)], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                start_new_session=True, pass_fds=(wfd,), cwd=str(app.project.dir))
    os.close(wfd)
    deadline = time.monotonic() + 60
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([rfd], [], [], 0.2)
        if r:
            chunk = os.read(rfd, 64)
            buf += chunk
            if b"\n" in buf or not chunk:
                break
        if proc.poll() is not None:
            break
    os.close(rfd)
    if buf.startswith(b"error: "):
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = 1
        app.abort(buf[7:].decode(errors="replace").strip(), code or 1)
    if buf.startswith(b"already running"):
        # Another `shipyard up` started it a moment ago: report that one once it answers.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _report_running(app, json_out, ControlClient, ControlPlaneUnavailable):
                return
            time.sleep(0.1)
    if not buf.startswith(b"ready"):
        tail = paths.daemon_log.read_text(errors="replace").splitlines()[-5:]
        raise ShipyardError("the control plane did not start:\n" + "\n".join(tail))
    client = ControlClient(paths)
    listen = (client.info() or {}).get("listen")  # [control] listen: the API for remote clients
    remote = f"{listen['scheme']}://{listen['host']}:{listen['port']}" if listen else None
    _report(app, json_out, f"control plane ready (pid {proc.pid}, API on 127.0.0.1:{client.port}"
            + (f", for remote clients on {remote}" if remote else "") + f"); logs: {paths.daemon_log}",
            {"pid": proc.pid, "port": client.port, "remote_url": remote, "already_running": False,
             "log": str(paths.daemon_log)})


def _port_problem(port: int) -> str | None:
    """Why ``--port`` cannot be the control API's port (the control plane checks it again itself)."""
    import socket

    if not 0 <= port <= 65535:
        return f"--port: must be between 0 (any free port) and 65535, got {port}"
    if port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                return f"--port: 127.0.0.1:{port} is not available ({exc.strerror})"
    return None


def _report_running(app: AppContext, json_out: bool, client_type: type[ControlClient],
                    unavailable: type[Exception]) -> bool:
    """Say "already running" (True) when the project's control plane answers."""
    try:
        client = client_type(app.paths)
    except unavailable:
        return False
    pid = (client.info() or {}).get("pid")
    _report(app, json_out, f"control plane already running (pid {pid}, port {client.port})",
            {"pid": pid, "port": client.port, "already_running": True, "log": str(app.paths.daemon_log)})
    return True


def _report(app: AppContext, json_out: bool, line: str, doc: dict[str, object]) -> None:
    if json_out:
        app.print_json(doc)
    else:
        app.echo(line)


def _check_receiver_secrets(app: AppContext) -> None:
    """A notification receiver whose secret an environment it serves lacks is bad input (exit 2)."""
    from shipyard.primitives.spec.notifications import check_secrets
    from shipyard.primitives.spec.secrets import SecretStore

    spec = app.spec
    if spec.notifications.receivers:
        check_secrets(spec.notifications, spec.env_names, SecretStore(app.project.state_dir).names)
