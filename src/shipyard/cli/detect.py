"""What ``shipyard init`` can tell about the app in a directory: its framework, the server to run it with,
and free router ports.

- FastAPI: a top-level module (or ``app/main.py``, ``app/__init__.py``) importing ``fastapi`` → ``uvicorn main:app --host 127.0.0.1 --port $PORT``
  (``hypercorn`` when requirements.txt names it and not uvicorn).
- Flask: a module importing ``flask`` → gunicorn (or waitress) when requirements.txt names it, else the
  Flask development server, with a note.
- Django: ``manage.py`` → gunicorn on ``<project>.wsgi`` (uvicorn on ``<project>.asgi`` when only uvicorn
  is required), the project package read from ``DJANGO_SETTINGS_MODULE``.
- Otherwise ``python3 app.py`` (or the first of ``app.py``, ``main.py``, ``server.py`` that exists).

requirements.txt (and ``[project].dependencies`` of pyproject.toml) only picks the server; a server the
requirements do not name is used all the same, with a note to add it.
"""

from __future__ import annotations

import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

MODULES = ("main.py", "app.py", "server.py", "api.py", "asgi.py", "wsgi.py", "app/main.py", "app/__init__.py")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_SETTINGS = re.compile(r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][\w.]*)\.settings["']""")
BIND = "127.0.0.1"


@dataclass(frozen=True)
class Detected:
    run: str
    framework: str | None = None
    server: str | None = None
    module: str | None = None
    notes: list[str] = field(default_factory=list)


def requirements(here: Path) -> set[str]:
    """Normalised distribution names from requirements.txt and pyproject.toml's dependencies."""
    lines: list[str] = []
    try:
        lines += (here / "requirements.txt").read_text(errors="replace").splitlines()
    except OSError:
        pass
    try:
        project = tomllib.loads((here / "pyproject.toml").read_text(errors="replace")).get("project", {})
        lines += [str(d) for d in project.get("dependencies", [])]
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        pass
    names: set[str] = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        m = _NAME.match(line)
        if m and not line.startswith("-"):
            names.add(re.sub(r"[-_.]+", "-", m.group(1)).lower())
    return names


def _imports(text: str, package: str) -> bool:
    return re.search(rf"^\s*(from\s+{package}(\.|\s)|import\s+{package}\b)", text, re.MULTILINE) is not None


def _app_object(text: str, cls: str) -> str | None:
    m = re.search(rf"^([A-Za-z_]\w*)\s*(?::[^=\n]+)?=\s*(?:\w+\.)?{cls}\(", text, re.MULTILINE)
    return m.group(1) if m else None


def _find(here: Path, package: str) -> tuple[str, str] | None:
    """The first top-level module importing ``package``: (module name, its text)."""
    for name in MODULES:
        path = here / name
        if path.is_file():
            text = path.read_text(errors="replace")
            if _imports(text, package):
                return name.removesuffix(".py").removesuffix("/__init__").replace("/", "."), text
    return None


def detect(here: Path) -> Detected:
    reqs = requirements(here)
    if (here / "manage.py").is_file():
        return _django(here, reqs)
    if found := _find(here, "fastapi"):
        module, text = found
        target = f"{module}:{_app_object(text, 'FastAPI') or 'app'}"
        if "hypercorn" in reqs and "uvicorn" not in reqs:
            return Detected(f"hypercorn {target} --bind {BIND}:$PORT", "fastapi", "hypercorn", module)
        notes = [] if "uvicorn" in reqs else ["requirements.txt does not name uvicorn: add it"]
        return Detected(f"uvicorn {target} --host {BIND} --port $PORT", "fastapi", "uvicorn", module, notes)
    if found := _find(here, "flask"):
        module, text = found
        obj = _app_object(text, "Flask")
        factory = obj is None and re.search(r"^def create_app\(", text, re.MULTILINE) is not None
        target = f"{module}:{obj or ('create_app()' if factory else 'app')}"
        target = f"'{target}'" if "(" in target else target  # the shell would read the parentheses
        if "gunicorn" in reqs:
            return Detected(f"gunicorn -b {BIND}:$PORT {target}", "flask", "gunicorn", module)
        if "waitress" in reqs:
            return Detected(f"waitress-serve --listen={BIND}:$PORT {target}", "flask", "waitress", module)
        return Detected(f"flask --app {target} run --host {BIND} --port $PORT", "flask", "flask", module,
                        ["this is Flask's development server: add gunicorn to requirements.txt to serve with it"])
    for name in ("app.py", "main.py", "server.py"):
        if (here / name).exists():
            return Detected(f"python3 {name}", module=Path(name).stem)
    return Detected("python3 app.py", notes=["no app found: set [app] run to the command that starts it"])


def _django(here: Path, reqs: set[str]) -> Detected:
    m = _SETTINGS.search((here / "manage.py").read_text(errors="replace"))
    package = m.group(1) if m else here.name.replace("-", "_")
    if "uvicorn" in reqs and "gunicorn" not in reqs:
        return Detected(f"uvicorn {package}.asgi:application --host {BIND} --port $PORT", "django", "uvicorn",
                        package)
    notes = [] if "gunicorn" in reqs else ["requirements.txt does not name gunicorn: add it"]
    return Detected(f"gunicorn -b {BIND}:$PORT {package}.wsgi", "django", "gunicorn", package, notes)


def free_ports(starts: tuple[int, ...], *, span: int = 800) -> list[int]:
    """One port per start: the first at or above it that is not in use here (and not already picked).
    The router listens on all interfaces by default, so that is where a port must be free."""
    picked: list[int] = []
    for start in starts:
        port = next((p for p in range(start, start + span) if p not in picked and _bindable(p)), start)
        picked.append(port)
    return picked


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True
