"""The one context every command runs in (hatch's ``cli/application.py``).

``AppContext`` holds what a command needs and builds each part when first asked: the project (found by
walking up from the working directory), its spec (loaded once per invocation), the control API client,
the consoles. The root callback in ``cli/main.py`` puts one in ``ctx.obj``; a command starts with
``app = AppContext.of(ctx)``. User-facing failures go through ``abort(message, code)`` (or raise a
``ShipyardError``, which ``main.run`` hands to ``abort``).

Output: rich consoles on a terminal; off a terminal (a pipe, a file, CI) nothing is wrapped or cut, so
release ids, outcomes and paths stay whole whatever ``COLUMNS`` says. Text that is not markup goes
through ``esc`` (``rich.markup.escape``): ``[environments.staging]`` must print as written.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import typer
    from rich.console import Console

    from shipyard.cli.client import ControlClient, Remote
    from shipyard.control.paths import Paths
    from shipyard.primitives.spec import EnvSpec, Spec

SPEC_FILES = ("shipyard.toml", "shipyard.yaml", "shipyard.yml")
# "Very wide" off a terminal: no line a command prints comes near it, and nothing pads to it.
OFF_TTY_WIDTH = 10_000


@dataclass(frozen=True)
class Project:
    """The project: the directory of its spec file and its ``.shipyard`` state dir."""

    dir: Path

    @property
    def state_dir(self) -> Path:
        return self.dir / ".shipyard"

    @property
    def spec_file(self) -> Path:
        for name in SPEC_FILES:
            if (self.dir / name).exists():
                return self.dir / name
        return self.dir / SPEC_FILES[0]


def find_project(start: Path | None = None) -> Project:
    # Set for hooks and release commands, which run inside a release (whose own shipyard.toml is a copy).
    given = os.environ.get("SHIPYARD_PROJECT")
    if given and start is None and any((Path(given) / n).exists() for n in SPEC_FILES):
        return Project(Path(given).resolve())
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / n).exists() for n in SPEC_FILES):
            return Project(candidate)
    from shipyard.errors import ConfigError

    raise ConfigError(f"no shipyard.toml in {here} or its parents (run 'shipyard init' to write one)")


def abort(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` (further lines indented) on stderr and exit with ``code``."""
    lines = message.splitlines() or [message]
    sys.stderr.write(f"error: {lines[0]}\n" + "".join(f"  {line}\n" for line in lines[1:]))
    raise SystemExit(code)


def esc(value: object) -> str:
    """Dynamic text for a console: printed as is, never read as markup."""
    from rich.markup import escape

    return escape(str(value))


def make_console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=OFF_TTY_WIDTH, soft_wrap=True)


class AppContext:
    def __init__(self, cwd: Path | None = None) -> None:
        self._cwd = cwd

    @classmethod
    def of(cls, ctx: typer.Context) -> AppContext:
        root = ctx.find_root()
        if not isinstance(root.obj, AppContext):
            root.obj = cls()
        return root.obj

    @cached_property
    def remote(self) -> Remote | None:
        """The control plane ``SHIPYARD_URL`` names (docs: README "Remote use"); None for the local one."""
        from shipyard.cli.client import remote_from_env

        return remote_from_env()

    @cached_property
    def project(self) -> Project:
        try:
            return find_project(self._cwd)
        except Exception as exc:
            from shipyard.errors import ConfigError

            if self.remote is None or not isinstance(exc, ConfigError):
                raise
            here = (self._cwd or Path.cwd()).resolve()
            raise ConfigError(f"this command needs the project directory (no shipyard.toml in {here} or its parents)\n"
                              "SHIPYARD_URL drives a remote control plane for deploy, rollback, status, history, "
                              "logs, run, approve, reject, lock, releases, events and the canary commands only"
                              ) from None

    def check_env(self, name: str) -> None:
        """An unknown environment is exit 2 before anything is sent; a remote control plane checks it itself."""
        if self.remote is None:
            self.env(name)

    def check_receiver_secrets(self, envs: list[str] | None = None, only: str | None = None) -> None:
        """A receiver that ``envs``' notifications reach (or ``only`` that one) without its secret: exit 2
        naming the key path, before anything is sent. A remote control plane checks with its own secrets."""
        if self.remote is not None or not self.spec.notifications.receivers:
            return
        from shipyard.primitives.spec.notifications import check_secrets
        from shipyard.primitives.spec.secrets import SecretStore

        check_secrets(self.spec.notifications, self.spec.env_names if envs is None else envs,
                      SecretStore(self.project.state_dir).names, only=only)

    @cached_property
    def paths(self) -> Paths:
        from shipyard.control.paths import Paths

        return Paths(self.project.dir)

    @cached_property
    def spec(self) -> Spec:
        """The project's spec, validated (``ConfigError``: exit 2, one line per problem)."""
        from shipyard.primitives.spec import load_spec

        return load_spec(self.project.spec_file)

    def env(self, name: str) -> EnvSpec:
        """An environment of the spec (unknown name: exit 2 naming the known ones)."""
        return self.spec.env(name)

    @cached_property
    def client(self) -> ControlClient:
        """The control API client: the remote one when SHIPYARD_URL is set, else the project's (not running:
        exit 1 telling to run ``shipyard up``)."""
        from shipyard.cli.client import ControlClient

        if self.remote is not None:
            return ControlClient.to(self.remote)
        return ControlClient(self.paths)

    @cached_property
    def local_client(self) -> ControlClient:
        """The project's own control plane whatever SHIPYARD_URL says (``down`` stops that one only)."""
        from shipyard.cli.client import ControlClient

        return ControlClient(self.paths)

    @cached_property
    def out(self) -> Console:
        return make_console()

    @cached_property
    def err(self) -> Console:
        return make_console(stderr=True)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        abort(message, code)

    def echo(self, line: str = "", *, stderr: bool = False) -> None:
        """A plain line (no markup, no wrapping)."""
        (sys.stderr if stderr else sys.stdout).write(line + "\n")

    def warn(self, message: str) -> None:
        self.echo(f"warning: {message}", stderr=True)

    def print_json(self, obj: Any) -> None:
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
