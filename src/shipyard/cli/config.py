"""shipyard config show: the resolved configuration of an environment, secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Inspect the resolved configuration.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show the environment's resolved config and instance environment (secret values as ***)."""
    from shipyard.cli.app import AppContext
    from shipyard.primitives.spec.masking import resolved_config
    from shipyard.primitives.spec.secrets import SecretStore

    ap = AppContext.of(ctx)
    ap.env(env)
    data = resolved_config(ap.spec, env, SecretStore(ap.project.state_dir), ap.project.dir)
    if json_out:
        ap.print_json(data)
        return
    import tomli_w

    ap.echo(tomli_w.dumps(_tomlable(data)))  # type: ignore[arg-type]


def _tomlable(obj: object) -> object:
    if isinstance(obj, dict):
        return {str(k): _tomlable(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_tomlable(v) for v in obj if v is not None]
    return obj
