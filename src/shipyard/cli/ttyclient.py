"""``shipyard run -i`` against a remote control plane: this terminal, in raw mode, carried to the program's
pseudo-terminal there over the upgraded API connection (frames: primitives/ttyframes.py).

Keystrokes go as typed (Ctrl-C included: the program's terminal turns it into its SIGINT); the window size
goes at the start and on every SIGWINCH; the program's output is written here as it comes. The exit code is
the last frame; a connection that ends without one is exit 1 with a message.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any

from shipyard.errors import ControlPlaneUnavailable
from shipyard.primitives.ttyframes import DATA, EXIT, Decoder, data_frames, winsize_frame


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _winsize() -> bytes:
    size = shutil.get_terminal_size((80, 24))
    return winsize_frame(size.lines, size.columns)


def drive(sock: socket.socket, early: bytes, where: str) -> int:
    """Pump bytes until the program's exit frame; returns its exit code."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    resized = [False]
    previous: Any = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    decoder = Decoder()
    reading_stdin = True
    try:
        with _raw(stdin):
            sock.sendall(_winsize())
            pending = early
            while True:
                if pending:
                    for frame in decoder.feed(pending):
                        if frame.kind == DATA:
                            os.write(stdout, frame.payload)
                        elif frame.kind == EXIT:
                            return frame.exit_code
                    pending = b""
                if resized[0]:
                    resized[0] = False
                    sock.sendall(_winsize())
                # A TLS socket may hold decrypted bytes that select() cannot see.
                if isinstance(sock, ssl.SSLSocket) and sock.pending():
                    pending = sock.recv(sock.pending())
                    continue
                watch = [sock, stdin] if reading_stdin else [sock]
                try:
                    ready, _, _ = select.select(watch, [], [], 0.5)
                except InterruptedError:  # SIGWINCH
                    continue
                if stdin in ready:
                    typed = os.read(stdin, 4096)
                    if typed:
                        sock.sendall(data_frames(typed))
                    else:
                        reading_stdin = False  # input ended (a pipe); the program keeps its terminal
                if sock in ready:
                    pending = sock.recv(65536)
                    if not pending:
                        raise ControlPlaneUnavailable(f"the connection to {where} ended before the program did")
    except (OSError, ssl.SSLError) as exc:
        raise ControlPlaneUnavailable(f"lost the terminal connection to {where}: {exc}") from exc
    finally:
        signal.signal(signal.SIGWINCH, previous)
        sock.close()
