"""A control plane listening with TLS (``[control] listen``, a self-signed certificate made here), driven by
the CLI as a separate process from a directory that holds no project: only SHIPYARD_URL, SHIPYARD_TOKEN and
SHIPYARD_CA tell it where to go."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from sandbox import Project, free_port, git, make_project  # noqa: E402

__all__ = ["Project", "RemoteCli", "git", "make_cert", "make_project"]


def make_cert(directory: Path, name: str = "control") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key (mode 0600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"shipyard {name}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class RemoteCli:
    """``python -m shipyard`` run from ``cwd`` (no project there) with only the remote variables set."""

    cwd: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)  # everything printed, for the no-token-in-output check

    def cli(self, *args: str, timeout: float = 120, **overrides: str | None) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **{k: v for k, v in overrides.items() if v is not None}}
        for k in [k for k, v in overrides.items() if v is None]:
            env.pop(k, None)
        proc = subprocess.run([sys.executable, "-m", "shipyard", *args], cwd=self.cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def ok(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = self.cli(*args, timeout=timeout)
        assert proc.returncode == 0, f"shipyard {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "--json").stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, RemoteCli, str]]:
    """A project on "the server" with `[control] listen` on 127.0.0.1 over TLS, and a CLI elsewhere."""
    root = tmp_path_factory.mktemp("server")
    proj = make_project(root)
    cert, _ = make_cert(proj.dir / "certs")
    port = free_port()
    proj.write_spec(replicas=1, extra=f'\n[control]\nlisten = "127.0.0.1:{port}"\n'
                                      'tls = { cert = "certs/control.pem", key = "certs/control.key" }\n')
    (proj.dir / ".gitignore").write_text(".shipyard/\ninstance/\n__pycache__/\ncerts/\n")
    proj.commit("v1")
    origin = root / "origin.git"  # where a pipeline's pushes land (GitHub, for a real project)
    git(root, "init", "-q", "--bare", "-b", "main", str(origin))
    git(proj.dir, "remote", "add", "origin", str(origin))
    git(proj.dir, "push", "-q", "origin", "main")
    try:
        up = proj.ok("up", "--detach", timeout=90)
        assert f"for remote clients on https://127.0.0.1:{port}" in up.stdout, up.stdout
        info = json.loads((proj.dir / ".shipyard" / "control.json").read_text())
        assert info["listen"] == {"host": "127.0.0.1", "port": port, "scheme": "https"}
        token = (proj.dir / ".shipyard" / "token").read_text().strip()
        client = tmp_path_factory.mktemp("client")  # nothing of the project here
        ca = client / "ca.pem"
        ca.write_bytes(cert.read_bytes())
        env = {k: v for k, v in proj.env.items() if not k.startswith("SHIPYARD_")}
        env.update(SHIPYARD_URL=f"https://127.0.0.1:{port}", SHIPYARD_TOKEN=token, SHIPYARD_CA=str(ca),
                   HOME=str(client))
        yield proj, RemoteCli(client, env), token
    finally:
        if proj.control_pid():
            proj.cli("down", timeout=120)
        proj.kill_everything()
