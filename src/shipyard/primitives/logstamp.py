"""``python -m shipyard.primitives.logstamp LOG``: put the time before each line of an instance's output.

Started (``process.spawn(..., stamp=True)``, ``[logs] timestamps = true``) as a detached process of its
own (double fork: not the control plane's child, not in the instance's session), reading the instance's
stdout/stderr from a pipe and appending each line to ``LOG`` (``O_APPEND``, one write per chunk, so the
log rotation's collapse stays lossless) behind ``2026-12-01T20:00:01.250Z ``. It ignores the stop
signals and ends at end of file — when the instance and everything that inherited its output are gone —
so it outlives a control-plane restart like the instance does, and the instance never meets a closed
pipe. A line is stamped when its first byte arrives; a partial line (a progress bar) is written at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Run by the intermediate process: fork, let the parent exit at once (so the stamper is nobody's zombie
# but init's), become a session of its own, load the stamper, then close stdout: ``start`` waits for
# that, so the stamper reads from the instance's first line on (a line is stamped when it is written).
_DETACH = ("import os,sys\nif os.fork(): os._exit(0)\nos.setsid()\n"
           "from shipyard.primitives.logstamp import main\n"
           "n = os.open(os.devnull, os.O_WRONLY); os.dup2(n, 1); os.close(n)\n"
           "raise SystemExit(main(sys.argv[1:]))")


def start(log_path: Path) -> int:
    """Start a detached stamper appending to ``log_path``; returns the write end of its pipe (CLOEXEC)
    for the instance's stdout and stderr. Blocks until the stamper reads (one Python start, ~50 ms)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        subprocess.run([sys.executable, "-c", _DETACH, str(log_path)], stdin=r, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, close_fds=True, check=True, timeout=10)
    except (subprocess.SubprocessError, OSError) as exc:
        os.close(w)
        raise OSError(f"the log stamper did not start: {exc}") from exc
    finally:
        os.close(r)
    return w


def stamp(t: float) -> bytes:
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z ").encode()


def stamped(chunk: bytes, at_start: bool, t: float) -> tuple[bytes, bool]:
    """``chunk`` with the time before each line that starts in it; whether the next chunk starts a line."""
    prefix = stamp(t)
    parts = chunk.split(b"\n")
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and not part:
            break
        out.append((prefix if (at_start or i > 0) else b"") + part + (b"" if last else b"\n"))
    return b"".join(out), chunk.endswith(b"\n")


def main(argv: list[str]) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    fd = os.open(argv[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    at_start = True
    while chunk := os.read(0, 65536):
        data, at_start = stamped(chunk, at_start, time.time())
        os.write(fd, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
