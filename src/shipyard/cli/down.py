"""shipyard down: stop every instance, the router and the control plane."""

from __future__ import annotations

import time

import psutil


def command() -> None:
    """Stop all environments of this project, the router and the control plane."""
    from shipyard.cli.common import find_project
    from shipyard.control.client import ControlClient
    from shipyard.control.paths import Paths
    from shipyard.errors import ControlPlaneUnavailable

    paths = Paths(find_project().dir)
    try:
        client = ControlClient(paths)
    except ControlPlaneUnavailable:
        print("the control plane is not running")
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
    print("stopped: instances, router and control plane")
