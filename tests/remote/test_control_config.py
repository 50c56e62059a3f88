"""``[control]``: what the spec refuses, and what ``shipyard up`` refuses before anything starts."""

from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path

import pytest

from shipyard.control.tlsconfig import remote_listener
from shipyard.errors import BadInput, ConfigError
from shipyard.primitives.spec import parse_spec

from .conftest import make_cert, make_project

BASE = ('[app]\nname = "svc"\nrun = "python3 app.py"\n[app.health]\npath = "/health"\n'
        '[environments.staging]\nport = 8000\n')
TLS = 'tls = { cert = "c.pem", key = "c.key" }'


def _problems(control: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_spec(tomllib.loads(BASE + "[control]\n" + control), Path("/p/shipyard.toml"))
    return "\n".join(info.value.problems)


@pytest.mark.parametrize(("control", "expected"), [
    ('listen = "0.0.0.0:7420"', "control: listen = '0.0.0.0:7420' is reachable from other machines"),
    ('listen = "[::]:7420"', "reachable from other machines: add tls"),
    ('listen = "ops.example:7420"', "reachable from other machines"),
    ('listen = "7420"', "control.listen: expected host:port"),
    ('listen = "127.0.0.1:70000"', "control.listen: expected host:port"),
    (TLS, "tls is for the listen address"),
    ('listen = "0.0.0.0:7420"\ntls = { cert = "c.pem" }', "control.tls.key: missing required key"),
    ('listen = "0.0.0.0:7420"\ninsecure = "yes"', "control.insecure"),
    ('lisen = "0.0.0.0:7420"', "control.lisen: unknown key"),
])
def test_spec_refuses(control: str, expected: str) -> None:
    assert expected in _problems(control)


@pytest.mark.parametrize("control", ['listen = "127.0.0.1:7420"', 'listen = "0.0.0.0:7420"\n' + TLS,
                                     'listen = "0.0.0.0:7420"\ninsecure = true', ""])
def test_spec_accepts(control: str) -> None:
    spec = parse_spec(tomllib.loads(BASE + "[control]\n" + control), Path("/p/shipyard.toml"))
    assert (spec.control.listen is None) == (control == "")


def test_files_and_address_checked_at_start(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "certs")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    good = 'tls = { cert = "certs/control.pem", key = "certs/control.key" }'
    cases = [
        ('tls = { cert = "certs/missing.pem", key = "certs/control.key" }', "127.0.0.1:0",
         "control.tls.cert: cannot read " + str(tmp_path / "certs" / "missing.pem")),
        ('tls = { cert = "certs/control.key", key = "certs/control.key" }', "127.0.0.1:0",
         "do not load as a PEM certificate and its key"),
        (good, f"127.0.0.1:{taken.getsockname()[1]}", "control.listen: 127.0.0.1:"),
    ]
    try:
        for tls, listen, expected in cases:
            spec = parse_spec(tomllib.loads(BASE + f'[control]\nlisten = "{listen}"\n{tls}\n'), tmp_path / "s.toml")
            with pytest.raises(BadInput, match=re.escape(expected)):
                remote_listener(spec.control, tmp_path)
    finally:
        taken.close()
    spec = parse_spec(tomllib.loads(BASE + f'[control]\nlisten = "127.0.0.1:0"\n{good}\n'), tmp_path / "s.toml")
    listener = remote_listener(spec.control, tmp_path)
    assert listener is not None and listener.scheme == "https"


def test_up_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    _, key = make_cert(proj.dir / "certs")
    os.chmod(key, 0o640)
    proj.write_spec(extra='\n[control]\nlisten = "127.0.0.1:0"\n'
                          'tls = { cert = "certs/control.pem", key = "certs/control.key" }\n')
    try:
        up = proj.cli("up", "--detach", timeout=60)
        assert up.returncode == 2, up.stderr
        assert f"control.tls.key: {key} is readable by others (mode 0640)" in up.stderr, up.stderr
        assert "Traceback" not in up.stderr and proj.control_pid() is None
        assert not (proj.dir / ".shipyard" / "run" / "router.json").exists(), "nothing was started"
    finally:
        proj.kill_everything()
