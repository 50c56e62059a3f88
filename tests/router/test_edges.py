"""Issue 17 part 4: sizes with units, bind, trusted proxies, TLS reload, HTTP→HTTPS redirect, 1xx and
trailers — each against a real router process and real upstream processes."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.errors import ConfigError
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.routerproto import RouterError, RoutingTable, parse
from shipyard.primitives.spec.loading import parse_spec
from shipyard.primitives.spec.router import RouterEnvSpec, TlsSpec
from shipyard.primitives.spec.sizes import parse_size
from shipyard.router.clientip import TrustedProxies

from .helpers import RouterProc, Upstream, pool, raw_exchange, read_response, wait_until
from .test_protection import make_cert


def spec_with_router(router: dict[str, Any]) -> dict[str, Any]:
    return {"app": {"name": "a", "run": "x", "health": {"path": "/"}},
            "environments": {"prod": {"port": 8000, "router": router}}}


def get(port: int, path: str, headers: bytes = b"", host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: shop\r\n" + headers + b"\r\n")
        return read_response(s)


# -- sizes with units ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "size"), [
    (2048, 2048), ("2048", 2048), ("100MiB", 100 * 1024**2), ("1KB", 1000), ("1 KiB", 1024), ("1.5MB", 1_500_000),
    ("2GiB", 2 * 1024**3), ("3gb", 3_000_000_000), ("10B", 10),
])
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_sizes_with_units(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    spec = parse_spec(spec_with_router({"max_body_size": "100MiB"}), Path("shipyard.toml"))
    assert spec.environments["prod"].router.max_body_size == 100 * 1024 * 1024
    for bad in ("10 parsecs", "1.5B", True, -1):
        with pytest.raises(ConfigError) as err:
            parse_spec(spec_with_router({"max_body_size": bad}), Path("shipyard.toml"))
        assert err.value.exit_code == 2
        assert any(p.startswith("environments.prod.router.max_body_size:") for p in err.value.problems)
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], settings={"max_body_size": "1KiB"})
    for size, status in ((1024, 200), (1025, 413)):
        out = raw_exchange(port, b"POST /sink HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                           % size + b"x" * size)
        assert out.startswith(b"HTTP/1.1 %d" % status), out[:80]


# -- bind ----------------------------------------------------------------------------------------------

def test_bind_per_environment(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    table = RoutingTable(env="prod", port=8200, settings=RouterEnvSpec(bind="127.0.0.2"))
    assert table.bind == "127.0.0.2" and table.to_wire()["bind"] == "127.0.0.2"
    assert parse(table.to_wire()).bind == "127.0.0.2"
    with pytest.raises(ConfigError) as err:
        parse_spec(spec_with_router({"bind": "everywhere"}), Path("shipyard.toml"))
    assert any(p.startswith("environments.prod.router.bind:") for p in err.value.problems)
    (a,) = upstreams("a1")
    port = free_port()
    # The control plane sends only settings.bind; it wins over the table's default.
    router.set_table("prod", port, [pool("r1", [a])], settings={"bind": "127.0.0.2"})
    assert get(port, "/", host="127.0.0.2")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


# -- trusted proxies -------------------------------------------------------------------------------------

def test_trusted_proxies_pick_the_client_from_x_forwarded_for() -> None:
    tp = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    assert tp.client(b"10.1.1.1", b"203.0.113.9, 10.2.2.2") == b"203.0.113.9"
    assert tp.client(b"10.1.1.1", b"6.6.6.6, 203.0.113.9") == b"203.0.113.9"  # the rightmost untrusted
    assert tp.client(b"192.0.2.1", b"203.0.113.9") == b"192.0.2.1"  # peer not trusted: XFF ignored
    assert tp.client(b"10.1.1.1", b"junk, 10.2.2.2") == b"10.2.2.2"
    assert tp.client(b"10.1.1.1", None) == b"10.1.1.1"
    assert not TrustedProxies().trusted(b"10.1.1.1")
    assert tp.trusted(b"::ffff:10.3.3.3") and not tp.trusted(b"not-an-ip")


@pytest.mark.parametrize("trusted", [True, False])
def test_trusted_proxies_for_forwarded_for_and_rate_limit(router: RouterProc, upstreams: Callable[..., list[Upstream]],
                                                         trusted: bool) -> None:
    import json

    (a,) = upstreams("a1")
    port = free_port()
    settings: dict[str, Any] = {"rate_limit": {"rps": 0.01, "burst": 1}}
    if trusted:
        settings["trusted_proxies"] = ["127.0.0.0/8"]
    router.set_table("prod", port, [pool("r1", [a])], settings=settings)
    status, _, body = get(port, "/headers", b"X-Forwarded-For: 203.0.113.5\r\n")
    assert status == 200
    xff = {k.lower(): v for k, v in json.loads(body)["headers"]}["x-forwarded-for"]
    assert xff == ("203.0.113.5, 127.0.0.1" if trusted else "127.0.0.1")
    # The bucket belongs to the client behind the proxy only when the proxy is trusted.
    assert get(port, "/", b"X-Forwarded-For: 203.0.113.5\r\n")[0] == 429
    assert get(port, "/", b"X-Forwarded-For: 203.0.113.6\r\n")[0] == (200 if trusted else 429)


# -- TLS certificate reload ------------------------------------------------------------------------------

def served_cert(port: int) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_tls_certificate_reloaded_when_renewed(router: RouterProc, upstreams: Callable[..., list[Upstream]],
                                               tmp_path: Path) -> None:
    (a,) = upstreams("a1")
    cert, key = make_cert(tmp_path)
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])], settings={"tls": {"cert": str(cert), "key": str(key)}})
    first = served_cert(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ssl.create_default_context(cafile=str(cert)).wrap_socket(raw, server_hostname="localhost") as old:
        # Renewal as certbot does it: new files renamed over the old paths (new inodes).
        new_dir = tmp_path / "renewed"
        new_dir.mkdir()
        new_cert, new_key = make_cert(new_dir)
        os.replace(new_key, key)
        os.replace(new_cert, cert)
        wait_until(lambda: served_cert(port) != first, timeout=10, what="the renewed certificate served")
        # The connection opened before the renewal goes on working.
        old.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(old)[0] == 200


# -- HTTP → HTTPS redirect -------------------------------------------------------------------------------

def test_redirect_http_to_https(router: RouterProc, upstreams: Callable[..., list[Upstream]], tmp_path: Path) -> None:
    (a,) = upstreams("a1")
    cert, key = make_cert(tmp_path)
    port, http_port = free_port(), free_port()
    tls = {"cert": str(cert), "key": str(key)}
    with pytest.raises(RouterError, match="redirect_http needs tls"):
        router.set_table("prod", port, [pool("r1", [a])], settings={"redirect_http": True, "http_port": http_port})
    with pytest.raises(ValueError, match="redirect_http needs tls"):
        RouterEnvSpec(redirect_http=True)
    assert RouterEnvSpec(redirect_http=True, tls=TlsSpec(cert="c", key="k")).http_port == 80
    router.set_table("prod", port, [pool("r1", [a])], settings={"tls": tls, "redirect_http": True,
                                                                "http_port": http_port})
    out = raw_exchange(http_port, b"POST /cart?id=7 HTTP/1.1\r\nHost: shop.example:8080\r\nContent-Length: 0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 308 Permanent Redirect\r\n"), out
    assert b"\r\nLocation: https://shop.example:%d/cart?id=7\r\n" % port in out
    assert b"Connection: close" in out
    assert raw_exchange(http_port, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(http_port, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # Turned off: the plain listener goes away.
    router.set_table("prod", port, [pool("r1", [a])], settings={"tls": tls})
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", http_port), timeout=5).close()
    # A redirect port someone else holds refuses the table, and the environment keeps its listeners.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(RouterError, match=f"redirect_http: port {busy} is in use"):
            router.set_table("prod", free_port(), [pool("r1", [a])],
                             settings={"tls": tls, "redirect_http": True, "http_port": busy})
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(s)[0] == 200


# -- 1xx and trailers ----------------------------------------------------------------------------------

def test_interim_responses_and_trailers_forwarded(router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    (a,) = upstreams("a1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a])])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /hints HTTP/1.1\r\nHost: shop\r\n\r\n")
        status, headers, _ = read_response(s)
        assert status == 103 and headers["link"] == "</style.css>; rel=preload; as=style"
        assert "x-frame-options" not in headers  # the router's own headers go on the final answer only
        status, headers, body = read_response(s)
        assert (status, body) == (200, b"hints") and "x-request-id" in headers
        # Same keep-alive connection: a chunked answer with trailers.
        s.sendall(b"GET /trailers HTTP/1.1\r\nHost: shop\r\n\r\n")
        buf = b""
        while not buf.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, buf
            buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    assert b"\r\nTrailer: X-Checksum" in head and b"Transfer-Encoding: chunked" in head
    assert body == b"5\r\nhello\r\n0\r\nX-Checksum: abc123\r\n\r\n"  # Set-Cookie is never taken from a trailer
    # HTTP/1.0 clients get no 1xx.
    out = raw_exchange(port, b"GET /hints HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b" 103 " not in out


def test_environments_never_share_a_listening_port(router: RouterProc, upstreams: Callable[..., list[Upstream]],
                                                   tmp_path: Path) -> None:
    (a,) = upstreams("a1")
    cert, key = make_cert(tmp_path)
    port, http_port = free_port(), free_port()
    router.set_table("prod", port, [pool("r1", [a])], settings={
        "tls": {"cert": str(cert), "key": str(key)}, "redirect_http": True, "http_port": http_port})
    # SO_REUSEPORT would let the second listener in and split the port's connections between the two.
    with pytest.raises(RouterError, match=f"table.port: {port} is already used by environment 'prod'"):
        router.set_table("staging", port, [pool("r1", [a])])
    with pytest.raises(RouterError, match=f"table.port: {http_port} is already used by environment 'prod'"):
        router.set_table("staging", http_port, [pool("r1", [a])])
    # Another address on the same port is another listener.
    router.set_table("staging", port, [pool("r1", [a])], settings={"bind": "127.0.0.3"})
    assert get(port, "/", host="127.0.0.3")[0] == 200
