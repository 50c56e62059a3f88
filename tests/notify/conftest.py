"""Real receivers for the notification tests, each started once per session on a loopback free port:

- ``recorder``: an HTTP server that records every POST (Slack and webhook posts) and can be told to fail;
- ``smtp``: an aiosmtpd SMTP server requiring STARTTLS, with a self-signed certificate made here;
- ``alertmanager``: the Debian ``prometheus-alertmanager`` (skipped only when it is not installed).
"""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Any, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


@dataclass
class Recorder:
    port: int = 0
    posts: list[tuple[float, str, Any]] = field(default_factory=list)  # (time, path, JSON body)
    failing: set[str] = field(default_factory=set)  # paths answered 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Any]:
        with self.lock:
            return [b for _, p, b in self.posts if p == path]

    def clear(self) -> None:
        with self.lock:
            self.posts.clear()
            self.failing.clear()


@pytest.fixture(scope="session")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path in rec.failing:
                self.send_response(503)
                self.end_headers()
                return
            with rec.lock:
                rec.posts.append((time.time(), self.path, json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield rec
    server.shutdown()


def self_signed(directory: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Smtp:
    port: int
    ca_file: Path
    messages: list[tuple[float, Any, bool]] = field(default_factory=list)  # (time, EmailMessage, tls)


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Smtp]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    cert, key = self_signed(tmp_path_factory.mktemp("smtp"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Smtp(free_port(), cert)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            msg = message_from_bytes(envelope.content, policy=policy.default)
            box.messages.append((time.time(), msg, session.ssl is not None))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port, tls_context=ctx,
                            require_starttls=True)
    controller.start()
    yield box
    controller.stop()


@dataclass
class Alertmanager:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as resp:
            return list(json.loads(resp.read()))


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("prometheus-alertmanager is not installed (scripts/setup-system.sh installs it)")
    d = tmp_path_factory.mktemp("alertmanager")
    (d / "am.yml").write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    am = Alertmanager(free_port())
    with open(d / "am.log", "wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={d / 'am.yml'}", f"--storage.path={d}",
                                 f"--web.listen-address=127.0.0.1:{am.port}", "--cluster.listen-address="],
                                stdout=subprocess.DEVNULL, stderr=log)

    def ready() -> bool:
        try:
            with urllib.request.urlopen(am.url + "/-/ready", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    try:
        assert wait_until(ready, 30), (d / "am.log").read_text()[-2000:]
        yield am
    finally:
        proc.terminate()
        proc.wait(10)
