"""The ``shipyard`` command: one module per subcommand, imported when registered.

Commands are registered here; each lives in ``shipyard/cli/<command>.py``. Sub-apps (``secrets``,
``config``, ``backup``) expose a ``typer.Typer`` named ``app``.
"""

from __future__ import annotations

import sys

import typer

from shipyard.errors import ShipyardError

app = typer.Typer(
    name="shipyard",
    help="Take a web service from a git commit to its environments, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    import importlib

    commands = ["init", "up", "down", "deploy", "rollback", "status", "history", "releases", "logs",
                "verify", "promote", "abort", "pause", "resume"]
    for name in commands:
        try:
            mod = importlib.import_module(f"shipyard.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"shipyard.cli.{name}":
                continue  # not built yet
            raise
        app.command(name=name)(mod.command)
    for name in ["secrets", "config", "backup"]:
        try:
            mod = importlib.import_module(f"shipyard.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"shipyard.cli.{name}":
                continue
            raise
        app.add_typer(mod.app, name=name)


_register()


def run() -> None:
    from shipyard.cli.common import fail

    try:
        app()
    except ShipyardError as err:
        fail(err)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
