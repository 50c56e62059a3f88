"""shipyard secrets set|unset|list: encrypted per-environment secrets (values never printed)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(help="Manage an environment's secrets (encrypted at rest; values never shown).",
                  no_args_is_help=True)


@app.command("set")
def set_(
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs; KEY=- reads the value from stdin.")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
) -> None:
    """Set secrets (applied to instances at the next deploy)."""
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.errors import BadInput
    from shipyard.primitives.spec.secrets import SecretStore

    project = find_project()
    load_project_spec(project).env(env)
    values: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise BadInput(f"expected KEY=VALUE, got '{pair.split('=')[0]}' with no '='")
        key, value = pair.split("=", 1)
        if value == "-":
            value = sys.stdin.read().rstrip("\n")
        values[key] = value
    store = SecretStore(project.state_dir)
    store.set(env, values)
    print(f"set {', '.join(sorted(values))} for {env} (secrets version {store.version(env)}); "
          "running instances get them at the next deploy")


@app.command("unset")
def unset(
    keys: Annotated[list[str], typer.Argument(help="Secret names to remove.")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
) -> None:
    """Remove secrets."""
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.primitives.spec.secrets import SecretStore

    project = find_project()
    load_project_spec(project).env(env)
    store = SecretStore(project.state_dir)
    store.unset(env, keys)
    print(f"removed {', '.join(keys)} from {env} (secrets version {store.version(env)})")


@app.command("list")
def list_(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """List secret names (never values)."""
    from shipyard.cli.common import find_project, load_project_spec, print_json
    from shipyard.primitives.spec.secrets import SecretStore

    project = find_project()
    load_project_spec(project).env(env)
    store = SecretStore(project.state_dir)
    names = sorted(store.names(env))
    if json_out:
        print_json({"env": env, "version": store.version(env), "names": names})
        return
    for n in names:
        print(n)
    if not names:
        print(f"no secrets for {env}", file=sys.stderr)
