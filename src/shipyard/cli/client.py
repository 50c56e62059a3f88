"""The CLI's client for the control API: JSON over HTTP with a bearer token.

Local (a project directory): ``http://127.0.0.1:<port>`` from ``.shipyard/control.json``, the token from
``.shipyard/token``. Remote (``SHIPYARD_URL`` set, see ``remote_from_env``): that URL with ``SHIPYARD_TOKEN``,
``https://`` verified against the system's CAs, ``SHIPYARD_CA`` (a PEM file) or the certificate ``SHIPYARD_CA``
pins (``sha256:…``); plain ``http://`` only to a loopback
address. Every command that talks only to the API works either way; nothing here reads the project then.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shipyard.control.paths import Paths
from shipyard.control.token import read_token
from shipyard.errors import BadInput, ControlPlaneUnavailable, NotPermitted, ShipyardError

URL_VAR, TOKEN_VAR, CA_VAR = "SHIPYARD_URL", "SHIPYARD_TOKEN", "SHIPYARD_CA"


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


def _permission_error(status: int, obj: Any, where: str) -> ShipyardError:
    """HTTP 401 (no or unknown token) and 403 (the token's role or environments do not allow it): exit 4."""
    said = obj.get("error") if isinstance(obj, dict) else None
    text = str(said or ("missing or wrong token" if status == 401 else "not permitted"))
    if status == 401:
        text += f" (the control plane at {where} refused the token: check {TOKEN_VAR} or .shipyard/token)"
    return NotPermitted(text)


@dataclass(frozen=True)
class Remote:
    """Where a remote control plane is and how to trust it (from the environment, never from a file)."""

    url: str
    host: str
    port: int
    tls: ssl.SSLContext | None
    token: str
    pin: bytes | None = None  # SHIPYARD_CA=sha256:…: exactly this certificate (its SHA-256), instead of a CA


def remote_from_env(environ: Mapping[str, str] | None = None) -> Remote | None:
    """``SHIPYARD_URL`` (+ ``SHIPYARD_TOKEN``, ``SHIPYARD_CA``) → a ``Remote``; None when it is not set.
    ``BadInput`` (exit 2) for a URL that is not ``https://host[:port]`` (or ``http://`` to loopback)."""
    from shipyard.primitives.spec.control import is_loopback

    env = os.environ if environ is None else environ
    url = env.get(URL_VAR, "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise BadInput(f"{URL_VAR}: {exc} in {url!r}") from None
    if parts.scheme not in ("http", "https") or not host or parts.path not in ("", "/") or parts.query \
            or parts.username or parts.password:
        raise BadInput(f"{URL_VAR}: expected https://HOST[:PORT], got {url!r}")
    if parts.scheme == "http" and not is_loopback(host):
        raise BadInput(f"{URL_VAR}: http:// to {host} would send the token in clear; use https:// "
                       "(plain http:// is for loopback addresses only)")
    ca = env.get(CA_VAR, "").strip()
    pin = _pin(ca) if ca.lower().startswith("sha256:") else None
    tls = None
    if parts.scheme == "https":
        tls = _pinned_tls() if pin is not None else _client_tls(ca)
    return Remote(url.rstrip("/"), host, port or (443 if tls else 80), tls, env.get(TOKEN_VAR, "").strip(), pin)


def _pin(text: str) -> bytes:
    digits = text[7:].replace(":", "").strip()
    try:
        pin = bytes.fromhex(digits)
    except ValueError:
        pin = b""
    if len(pin) != 32:
        raise BadInput(f"{CA_VAR}: expected sha256: and the certificate's 64 hex digits (colons allowed), got "
                       f"{text[:20]!r}…")
    return pin


def _pinned_tls() -> ssl.SSLContext:
    """For a pin the chain is not checked against a CA: the certificate itself is, after the handshake and
    before a byte is sent (``_check_pin``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _check_pin(sock: ssl.SSLSocket, pin: bytes, where: str) -> None:
    import hashlib
    import hmac

    der = sock.getpeercert(binary_form=True) or b""
    seen = hashlib.sha256(der).digest()
    if not hmac.compare_digest(seen, pin):
        sock.close()
        raise BadInput(f"TLS: the certificate of {where} is not the one {CA_VAR} pins (it has sha256:{seen.hex()})")


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, timeout: float | None, context: ssl.SSLContext, pin: bytes,
                 where: str) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._pin, self._where = pin, where

    def connect(self) -> None:
        super().connect()
        assert isinstance(self.sock, ssl.SSLSocket)
        _check_pin(self.sock, self._pin, self._where)


def _client_tls(ca: str) -> ssl.SSLContext:
    """System CAs, or only ``SHIPYARD_CA`` (a PEM file: the CA, or the server's own self-signed certificate).
    Verification is never switched off."""
    try:
        context = ssl.create_default_context(cafile=ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"{CA_VAR}: cannot load {ca} as PEM certificates ({getattr(exc, 'strerror', None) or exc})"
                       ) from None
    # SHIPYARD_CA may name the server's certificate itself even when a private CA issued it.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


class ControlClient:
    def __init__(self, paths: Paths | None, timeout: float = 30.0, *, remote: Remote | None = None) -> None:
        self.paths = paths
        self.timeout = timeout
        self.remote = remote
        if remote is not None:
            self.host, self.port, self.token, self.where = remote.host, remote.port, remote.token, remote.url
            return
        assert paths is not None
        info = self.info()
        if info is None:
            raise ControlPlaneUnavailable(
                f"the control plane is not running for {paths.project} (start it with 'shipyard up --detach')")
        self.host, self.port = "127.0.0.1", int(info["port"])
        # SHIPYARD_TOKEN: act as another identity (a CI job, a person's own token); else the local admin.
        self.token = os.environ.get(TOKEN_VAR) or read_token(paths.token) or ""
        self.where = f"port {self.port}"

    @classmethod
    def to(cls, remote: Remote, timeout: float = 30.0) -> ControlClient:
        return cls(None, timeout, remote=remote)

    def info(self) -> dict[str, Any] | None:
        """The local control plane's ``control.json`` (None when it is not running, or for a remote one)."""
        if self.paths is None:
            return None
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
        if self.remote is not None and self.remote.tls is not None:
            if self.remote.pin is not None:
                return _PinnedConnection(self.host, self.port, timeout=timeout, context=self.remote.tls,
                                         pin=self.remote.pin, where=self.where)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.remote.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _request(self, method: str, path: str, body: dict[str, Any] | None, timeout: float | None
                 ) -> http.client.HTTPResponse:
        if body is not None and "performer" not in body:
            body = {**body, "performer": _performer()}
        data = json.dumps(body or {}).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._conn(timeout)
        with self._mapped_errors():
            conn.request(method, path, body=data if body is not None else None, headers=headers)
            return conn.getresponse()

    @contextlib.contextmanager
    def _mapped_errors(self) -> Iterator[None]:
        """Network and TLS failures as the CLI reports them (a certificate that does not verify: exit 2)."""
        try:
            yield
        except ssl.SSLCertVerificationError as exc:
            raise BadInput(f"TLS: cannot verify the certificate of {self.where}: {exc.verify_message}; set "
                           f"{CA_VAR}=/path/ca.pem to the CA (or the self-signed certificate) it uses") from None
        except ssl.SSLError as exc:
            raise ControlPlaneUnavailable(f"TLS with {self.where} failed: {exc.reason or exc} (is it https?)"
                                          ) from None
        except OSError as exc:
            raise ControlPlaneUnavailable(f"cannot reach the control plane at {self.where}: {exc}") from exc
        except http.client.HTTPException as exc:  # e.g. https:// to a plain-HTTP listener
            raise ControlPlaneUnavailable(f"the control plane at {self.where} answered garbage ({exc!r})") from exc

    def upgrade(self, path: str, body: dict[str, Any], protocol: str) -> tuple[socket.socket, bytes]:
        """POST ``body`` asking to switch the connection to ``protocol``; on ``101`` the socket (TLS when
        remote) and the bytes that came after the answer's head. Any other answer is raised as ``call`` would."""
        body = {**body, "performer": body.get("performer") or _performer()}
        data = json.dumps(body).encode()
        auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{auth}Content-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n")
        with self._mapped_errors():
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.remote is not None and self.remote.tls is not None:
                sock = self.remote.tls.wrap_socket(sock, server_hostname=self.host)
                if self.remote.pin is not None:
                    _check_pin(sock, self.remote.pin, self.where)
            sock.sendall(head.encode() + data)
            got = b""
            while b"\r\n\r\n" not in got and len(got) < 65536:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        answer, _, rest = got.partition(b"\r\n\r\n")
        status_line = answer.split(b"\r\n", 1)[0].split(b" ")
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        if status == 101:
            sock.settimeout(None)
            return sock, rest
        with self._mapped_errors():
            while True:  # an error document, then the server closes
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        sock.close()
        try:
            obj = json.loads(rest or b"{}")
        except json.JSONDecodeError as exc:
            raise ShipyardError(f"control plane answered {status} with non-JSON") from exc
        if status in (401, 403):
            raise _permission_error(status, obj, self.where)
        raise_remote(obj)
        raise ShipyardError(f"the control plane at {self.where} did not switch to {protocol} (answered {status})")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        resp = self._request(method, path, body, timeout or self.timeout)
        raw = resp.read()
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ShipyardError(f"control plane answered {resp.status} with non-JSON") from exc
        if resp.status in (401, 403):
            raise _permission_error(resp.status, obj, self.where)
        raise_remote(obj)  # 429 carries exit code 4 too (errors.NotPermitted)
        if resp.status >= 400:
            raise ShipyardError(f"control plane answered {resp.status}")
        return obj

    def stream(self, path: str, body: dict[str, Any], *, idle_timeout: float | None = None,
               method: str = "POST") -> Iterator[dict[str, Any]]:
        """POST (or GET, without a body) and yield NDJSON events until the server closes (deploys can take
        minutes). With ``idle_timeout`` the server must send something (an event or a heartbeat) that often."""
        resp = self._request(method, path, body if method == "POST" else None, idle_timeout)
        if resp.status != 200 or resp.getheader("Content-Type", "").startswith("application/json"):
            try:
                obj = json.loads(resp.read() or b"{}")
            except json.JSONDecodeError as exc:
                raise ShipyardError(f"control plane answered {resp.status} with non-JSON") from exc
            if resp.status in (401, 403):
                raise _permission_error(resp.status, obj, self.where)
            raise_remote(obj)
            yield obj
            return
        while True:
            try:
                line = resp.readline()
            except TimeoutError as exc:
                raise ControlPlaneUnavailable(f"the control plane at {self.where} sent nothing for "
                                              f"{idle_timeout:g}s" + self._log_hint()) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise ControlPlaneUnavailable(f"lost the connection to {self.where}: {exc}") from exc
            if not line:
                break
            yield json.loads(line)

    def _log_hint(self) -> str:
        return f" (see {self.paths.daemon_log})" if self.paths is not None else " (see its .shipyard/logs/control.log)"


def performer_name() -> str:
    return _performer()


def _performer() -> str:
    """Who the caller says it acts for, recorded beside its identity (``ci-bot (octocat)``):
    SHIPYARD_PERFORMER (a CI job sets it to its actor) or the OS user."""
    import getpass

    try:
        return os.environ.get("SHIPYARD_PERFORMER") or getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid
        return "unknown"
