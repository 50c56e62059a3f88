"""The control API's bearer token: random, kept in ``.shipyard/token`` with mode 0600.

A token file that others could read (group/other bits set, or owned by another user) is treated as leaked:
the control plane replaces it with a new token at start, mode 0600, and logs a warning. Fixing only the mode
would keep a token someone may already have copied. Anything but a regular file there is refused.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from shipyard.errors import ShipyardError

log = logging.getLogger("shipyard.control.token")


def ensure_token(path: Path) -> str:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return _write_new(path)
    if not stat.S_ISREG(st.st_mode):
        raise ShipyardError(f"{path} is not a regular file; remove it and run 'shipyard up' again")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 or st.st_uid != os.getuid():
        log.warning("%s was readable by others (mode %04o, owner uid %d): replaced with a new token (mode 0600)",
                    path, mode, st.st_uid)
        return _write_new(path)
    token = path.read_text().strip()
    return token or _write_new(path)


def _write_new(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return token


def read_token(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None
