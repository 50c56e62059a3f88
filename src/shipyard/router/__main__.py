"""``python -m shipyard.router --socket PATH [--log-dir DIR] [--admin-port N]``: the data plane process."""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import socket
import sys
from pathlib import Path

from shipyard.primitives.listenerpass import parse_listener_arg, receive_listeners
from shipyard.router.admin import serve_admin
from shipyard.router.control import serve_control
from shipyard.router.listeners import INHERITED
from shipyard.router.server import Router


def _socket_in_use(path: Path) -> bool:
    if not path.exists():
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _raise_fd_limit() -> None:
    """One descriptor per client and per upstream connection: a soft limit of 1024 would refuse clients
    long before the listen backlog or memory run out, so take what the hard limit allows."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass  # e.g. an unlimited hard limit the kernel will not take as a soft one


async def _main(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    router = Router(loop, Path(args.log_dir) if args.log_dir else None, args.worker)
    sock_path = Path(args.socket)
    if _socket_in_use(sock_path) and not args.replace:
        print(f"router: another router is answering on {sock_path} (use --replace to take over)", file=sys.stderr)
        return 2
    for value in args.listener or ():
        key, fd = parse_listener_arg(value)
        INHERITED[key] = socket.socket(fileno=fd)
        INHERITED[key].setblocking(False)
    if args.replace and _socket_in_use(sock_path):
        try:  # share the old router's listening sockets: its exit then drops no queued connection
            INHERITED.update(receive_listeners(sock_path))
        except Exception as exc:  # an older router, or one that does not answer: bind anew (SO_REUSEPORT)
            print(f"router: listeners not handed over ({exc}); binding new ones", file=sys.stderr)
    router.add_server(await serve_control(router, sock_path))
    if args.admin_port:
        try:
            router.add_server(await serve_admin(router, args.admin_host, args.admin_port))
        except OSError as exc:
            print(f"router: cannot listen on admin port {args.admin_port}: {exc.strerror}", file=sys.stderr)
            return 2
    router.start()
    gc.freeze()  # what start-up imported lives as long as the process: keep it out of every collection
    await router.stopped.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shipyard.router", description="shipyard's HTTP router")
    ap.add_argument("--socket", required=True, help="control socket path (unix)")
    ap.add_argument("--log-dir", help="directory for access.log (no access log when omitted)")
    ap.add_argument("--admin-port", type=int, default=0, help="Prometheus /metrics port (off when 0)")
    ap.add_argument("--admin-host", default="127.0.0.1")
    ap.add_argument("--replace", action="store_true",
                    help="take over the control socket path from a running router (handover)")
    ap.add_argument("--listener", action="append", metavar="HOST:PORT:FD",
                    help="an inherited listening socket to use for HOST:PORT (the control plane passes the ones it holds)")
    ap.add_argument("--worker", type=int, default=0,
                    help="worker number (names its access log access-N.log; 0: access.log)")
    ap.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio event loop")
    args = ap.parse_args(argv)
    _raise_fd_limit()
    if not args.no_uvloop:
        try:
            import uvloop

            return uvloop.run(_main(args))
        except ImportError:
            pass
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
