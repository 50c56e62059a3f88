"""The CLI's client for the control API (``http.client`` on loopback, bearer token)."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from typing import Any

from shipyard.control.paths import Paths
from shipyard.control.token import read_token
from shipyard.errors import ControlPlaneUnavailable, NotPermitted, ShipyardError


class _Remote(ShipyardError):
    pass


def raise_remote(obj: Any) -> None:
    """A control plane's error answer (``{"error", "exit_code"}``) raised here with its exit code."""
    if isinstance(obj, dict) and "error" in obj:
        if obj.get("exit_code") == NotPermitted.exit_code:
            raise NotPermitted(str(obj["error"]))  # the token, its role or its environments: exit 4
        err = _Remote(obj["error"])
        err.exit_code = int(obj.get("exit_code", 1))
        raise err


class ControlClient:
    def __init__(self, paths: Paths, timeout: float = 30.0) -> None:
        self.paths = paths
        self.timeout = timeout
        info = self.info()
        if info is None:
            raise ControlPlaneUnavailable(
                f"the control plane is not running for {paths.project} (start it with 'shipyard up --detach')")
        self.port = int(info["port"])
        # SHIPYARD_TOKEN: act as another identity (a CI job, a person's own token); else the local admin.
        self.token = os.environ.get("SHIPYARD_TOKEN") or read_token(paths.token) or ""

    def info(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.paths.control.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        from shipyard.primitives.process import is_alive

        # A killed control plane can linger as a zombie and its pid can be reused: check identity.
        if not is_alive(int(data.get("pid", 0)), float(data.get("create_time", 0.0))):
            return None
        return data

    def _conn(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def _request(self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None
                 ) -> http.client.HTTPResponse:
        if body is not None and "performer" not in body:
            body = {**body, "performer": _performer()}
        data = json.dumps(body or {}).encode()
        conn = self._conn(timeout)
        try:
            conn.request(method, path, body=data if body is not None else None, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            return conn.getresponse()
        except OSError as exc:
            raise ControlPlaneUnavailable(f"cannot reach the control plane on port {self.port}: {exc}") from exc

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        resp = self._request(method, path, body, timeout or self.timeout)
        raw = resp.read()
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ShipyardError(f"control plane answered {resp.status} with non-JSON") from exc
        raise_remote(obj)  # 401/403/429 carry exit code 4 (errors.NotPermitted)
        if resp.status >= 400:
            raise ShipyardError(f"control plane answered {resp.status}")
        return obj

    def stream(self, path: str, body: dict[str, Any], *, idle_timeout: float | None = None
               ) -> Iterator[dict[str, Any]]:
        """POST and yield NDJSON events until the server closes (deploys can take minutes). With
        ``idle_timeout`` the server must send something (an event or a heartbeat) at least that often."""
        resp = self._request("POST", path, body, idle_timeout)
        if resp.status != 200 or resp.getheader("Content-Type", "").startswith("application/json"):
            obj = json.loads(resp.read() or b"{}")
            raise_remote(obj)
            yield obj
            return
        while True:
            try:
                line = resp.readline()
            except TimeoutError as exc:
                raise ControlPlaneUnavailable(f"the control plane sent nothing for {idle_timeout:g}s "
                                              f"(see {self.paths.daemon_log})") from exc
            if not line:
                break
            yield json.loads(line)


def _performer() -> str:
    """Who the caller says it acts for, recorded beside its identity (``ci-bot (octocat)``):
    SHIPYARD_PERFORMER (a CI job sets it to its actor) or the OS user."""
    import getpass

    try:
        return os.environ.get("SHIPYARD_PERFORMER") or getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid
        return "unknown"
