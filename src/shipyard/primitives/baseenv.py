"""The base environment of the processes shipyard starts for an app (instances and build commands).

What they get from the environment of ``shipyard up``, and nothing else (README "The instance
environment"): a bare ``python3`` or ``gunicorn`` in ``run`` or ``build`` must not silently come from
shipyard's own virtualenv, nor a variable of the operator's shell (or shipyard's own settings, which
may carry secrets) leak into the app.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import sys
from collections.abc import Mapping
from pathlib import Path

BASE_VARS = ("HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")


def system_path(inherited: Mapping[str, str]) -> str:
    """``PATH`` without shipyard's own virtualenv (nor the one ``VIRTUAL_ENV`` names): the system's."""
    drop = {os.path.dirname(sys.executable)} if sys.prefix != sys.base_prefix else set()
    if sys.prefix != sys.base_prefix:
        drop.add(os.path.join(sys.prefix, "bin"))
    if inherited.get("VIRTUAL_ENV"):
        drop.add(os.path.join(inherited["VIRTUAL_ENV"], "bin"))
    drop = {os.path.normpath(d) for d in drop}
    kept = [d for d in inherited.get("PATH", "").split(os.pathsep) if d and os.path.normpath(d) not in drop]
    return os.pathsep.join(dict.fromkeys(kept)) or os.defpath


def base_environment(cwd: Path, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The documented base: the system PATH (the release's own ``.venv/bin`` first when it has one),
    HOME, LANG/LC_ALL, TZ, USER/LOGNAME, TMPDIR and PYTHONUNBUFFERED=1."""
    src = os.environ if inherited is None else inherited
    env = {k: src[k] for k in BASE_VARS if src.get(k)}
    if not all(k in env for k in ("HOME", "USER", "LOGNAME")):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwuid(os.getuid())
            env.setdefault("HOME", pw.pw_dir)
            env.setdefault("USER", pw.pw_name)
            env.setdefault("LOGNAME", pw.pw_name)
    path = system_path(src)
    venv_bin = cwd / ".venv" / "bin"
    if venv_bin.is_dir():
        path = f"{venv_bin}{os.pathsep}{path}"
    env["PATH"] = path
    # Python buffers stdout when it is not a terminal; `shipyard logs` should show lines as they come.
    env["PYTHONUNBUFFERED"] = "1"
    return env
