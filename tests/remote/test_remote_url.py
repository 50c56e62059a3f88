"""SHIPYARD_URL, SHIPYARD_TOKEN and SHIPYARD_CA as the CLI reads them (no network: nothing is sent)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from shipyard.cli.client import remote_from_env
from shipyard.errors import BadInput

from .conftest import make_cert


@pytest.mark.parametrize(("url", "says"), [
    ("http://192.0.2.10:7420", "would send the token in clear"),
    ("http://ops.example:7420", "would send the token in clear"),
    ("ftp://127.0.0.1:1", "expected https://HOST[:PORT]"),
    ("https://ops.example:7420/v1", "expected https://HOST[:PORT]"),
    ("https://user:pw@ops.example", "expected https://HOST[:PORT]"),
    ("https://ops.example:99999", "SHIPYARD_URL: Port out of range"),
    ("https://", "expected https://HOST[:PORT]"),
])
def test_refused_urls(url: str, says: str) -> None:
    with pytest.raises(BadInput, match=re.escape(says)):
        remote_from_env({"SHIPYARD_URL": url})


def test_accepted(tmp_path: Path) -> None:
    assert remote_from_env({}) is None and remote_from_env({"SHIPYARD_URL": " "}) is None
    loop = remote_from_env({"SHIPYARD_URL": "http://127.0.0.1:7420", "SHIPYARD_TOKEN": "t"})
    assert loop is not None and loop.tls is None and (loop.host, loop.port, loop.token) == ("127.0.0.1", 7420, "t")
    public = remote_from_env({"SHIPYARD_URL": "https://ops.example/"})
    assert public is not None and public.port == 443 and public.tls is not None
    assert public.tls.verify_mode == ssl.CERT_REQUIRED and public.tls.check_hostname
    cert, _ = make_cert(tmp_path)
    pinned = remote_from_env({"SHIPYARD_URL": "https://[::1]:7420", "SHIPYARD_CA": str(cert)})
    assert pinned is not None and pinned.host == "::1" and pinned.tls is not None
    assert pinned.tls.verify_mode == ssl.CERT_REQUIRED and len(pinned.tls.get_ca_certs()) == 1
    pin = remote_from_env({"SHIPYARD_URL": "https://ops.example", "SHIPYARD_CA": "SHA256:" + "ab:" * 31 + "ab"})
    assert pin is not None and pin.pin == bytes([0xAB]) * 32 and pin.tls is not None
    with pytest.raises(BadInput, match="64 hex digits"):
        remote_from_env({"SHIPYARD_URL": "https://ops.example", "SHIPYARD_CA": "sha256:abcd"})
    with pytest.raises(BadInput, match="SHIPYARD_CA: cannot load"):
        remote_from_env({"SHIPYARD_URL": "https://ops.example", "SHIPYARD_CA": str(tmp_path / "none.pem")})
