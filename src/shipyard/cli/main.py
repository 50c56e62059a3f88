"""The ``shipyard`` command: one module per subcommand, imported when registered.

Commands are registered here; each lives in ``shipyard/cli/<command>.py``. Sub-apps (``secrets``,
``config``, ``backup``) expose a ``typer.Typer`` named ``app``. Command modules import only typer at
the top; everything else is imported inside the command, so ``shipyard --help`` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shipyard.errors import ShipyardError

COMMANDS = ["init", "up", "down", "deploy", "rollback", "status", "history", "releases", "logs", "verify",
            "promote", "abort", "pause", "resume", "run", "metrics", "alerts", "events", "audit", "approve", "reject",
            "report", "dashboard"]
SUB_APPS = ["image", "secrets", "config", "backup", "ci", "lock", "token", "silence", "notify", "export", "jobs",
            "accessory", "incident", "maintenance"]

app = typer.Typer(
    name="shipyard",
    help="Take a web service from a git commit to its environments, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"shipyard {version('shipyard')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print shipyard's version and exit.")] = False,
) -> None:
    from shipyard.cli.app import AppContext

    ctx.obj = AppContext()


def _register() -> None:
    import importlib

    for name in COMMANDS:
        mod = importlib.import_module(f"shipyard.cli.{name}")
        # A command taking arbitrary arguments after `--` (shipyard run) says so in its CONTEXT.
        app.command(name=name, context_settings=getattr(mod, "CONTEXT", None))(mod.command)
    for name in SUB_APPS:
        app.add_typer(importlib.import_module(f"shipyard.cli.{name}").app, name=name)


_register()


def run() -> None:
    from shipyard.cli.app import abort

    try:
        app()
    except ShipyardError as err:
        abort(str(err), err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
