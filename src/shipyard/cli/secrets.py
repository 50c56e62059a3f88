"""shipyard secrets set|unset|list: encrypted per-environment secrets (values never printed)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext
    from shipyard.primitives.spec.secrets import SecretStore

app = typer.Typer(help="Manage an environment's secrets (encrypted at rest; values never shown).",
                  no_args_is_help=True)

Env = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _via_api(ap: AppContext, body: dict[str, Any]) -> dict[str, Any] | None:
    """Through the running control plane (checked: admin; recorded in the audit by name), or None when it
    is not running: then the files are written here, which takes the project's master key (docs/access.md)."""
    from shipyard.errors import ControlPlaneUnavailable

    try:
        client = ap.client
    except ControlPlaneUnavailable:
        return None
    doc: dict[str, Any] = client.call("POST", "/v1/secrets", body)
    return doc


def _audit_offline(ap: AppContext, action: str, env: str, names: list[str], version: int) -> None:
    """The control plane is not running: the row waits in a file it imports at its next start."""
    import time

    from shipyard.cli.client import performer_name
    from shipyard.control.pendingaudit import record_offline

    record_offline(ap.project.state_dir, time.time(), f"local ({performer_name()})", action, env,
                   ", ".join(names), {"names": names, "version": version})


def _open(ctx: typer.Context, env: str) -> tuple[AppContext, SecretStore]:
    from shipyard.cli.app import AppContext
    from shipyard.primitives.spec.secrets import SecretStore

    ap = AppContext.of(ctx)
    ap.env(env)
    return ap, SecretStore(ap.project.state_dir)


@app.command("set")
def set_(
    ctx: typer.Context,
    pairs: Annotated[list[str], typer.Argument(help="KEY=VALUE pairs; KEY=- reads the value from stdin.")],
    env: Env,
    json_out: Json = False,
) -> None:
    """Set secrets (applied to instances at the next deploy)."""
    from shipyard.primitives.spec.models import VAR_NAME

    ap, store = _open(ctx, env)
    values: dict[str, str] = {}
    for n, pair in enumerate(pairs, 1):
        if "=" not in pair:
            # The argument may well be the value itself: never shown, not even in part.
            ap.abort(f"argument {n}: expected KEY=VALUE (or KEY=- to read the value from stdin); "
                     "it has no '=' (not shown: it may be a secret)", 2)
        key, value = pair.split("=", 1)
        if not VAR_NAME.match(key):
            # A value with an '=' in it and no KEY= in front would be echoed here in part.
            ap.abort(f"argument {n}: the name before '=' is not a valid environment variable name (letters, "
                     "digits and '_', not starting with a digit; not shown: it may be part of a secret)", 2)
        if value == "-":
            value = sys.stdin.read().rstrip("\n")
        values[key] = value
    doc = _via_api(ap, {"env": env, "action": "set", "values": values})
    if doc is None:
        version = store.set(env, values)
        _audit_offline(ap, "secrets_set", env, sorted(values), version)
    else:
        version = doc["version"]
    if json_out:
        ap.print_json({"env": env, "set": sorted(values), "version": version})
        return
    ap.echo(f"set {', '.join(sorted(values))} for {env} (secrets version {version}); "
            "running instances get them at the next deploy")


@app.command("unset")
def unset(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(help="Secret names to remove.")],
    env: Env,
    json_out: Json = False,
) -> None:
    """Remove secrets."""
    ap, store = _open(ctx, env)
    doc = _via_api(ap, {"env": env, "action": "unset", "keys": keys})
    if doc is None:
        version = store.unset(env, keys)
        _audit_offline(ap, "secrets_unset", env, sorted(keys), version)
    else:
        version = doc["version"]
    if json_out:
        ap.print_json({"env": env, "unset": keys, "version": version})
        return
    ap.echo(f"removed {', '.join(keys)} from {env} (secrets version {version})")


@app.command("list")
def list_(ctx: typer.Context, env: Env, json_out: Json = False) -> None:
    """List secret names (never values)."""
    ap, store = _open(ctx, env)
    names = sorted(store.names(env))
    if json_out:
        ap.print_json({"env": env, "version": store.version(env), "names": names})
        return
    for n in names:
        ap.echo(n)
    if not names:
        ap.echo(f"no secrets for {env}", stderr=True)
