"""shipyard logs: an environment's instance output (stdout and stderr)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    instance: Annotated[int | None, typer.Option("--instance", "-i", help="Only instance N (its index).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines of history per instance.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line: {instance, line}.")] = False,
    deployment: Annotated[int | None, typer.Option("--deployment", "-d",
                                                   help="The instances deployment N started (also stopped ones).")] = None,
) -> None:
    """Print (and follow) the output of an environment's instances."""
    from urllib.parse import quote

    from shipyard.cli.app import AppContext
    from shipyard.errors import ControlPlaneUnavailable

    app = AppContext.of(ctx)
    app.env(env)
    logdir = app.paths.state / "logs" / env
    if deployment is not None:
        started = app.client.call("GET", f"/v1/instances?env={quote(env)}&deployment={deployment}")
        chosen = [Path(i["log"]) for i in started if Path(i["log"]).exists()]
        if not chosen:
            app.abort(f"deployment {deployment} on {env} left no instance output", 2)
        write = _writer(json_out, prefix=len(chosen) > 1)
        for f in chosen:
            for line in _tail(f, lines):
                write(f.stem, line)
        return
    try:
        live = {i["id"]: i for i in app.client.call("GET", f"/v1/instances?env={quote(env)}")}
    except ControlPlaneUnavailable:
        # Instances outlive the control plane, and so do their logs: read the files without it.
        live = {}
        app.warn("the control plane is not running; showing every log file of the environment")
    files = sorted(logdir.glob("*.log")) if logdir.is_dir() else []
    # Prefer the instances that are running now; fall back to every log we have.
    chosen = [f for f in files if f.stem in live] or files
    if instance is not None:
        chosen = [f for f in chosen if f.stem in live and live[f.stem]["index"] == instance] or \
                 [f for f in chosen if f.stem.split("-")[-2:-1] == [str(instance)]]
        if not chosen:
            app.abort(f"no instance {instance} in {env}", 2)
    if not chosen:
        app.echo(f"no logs for {env} yet", stderr=True)
        return
    write = _writer(json_out, prefix=len(chosen) > 1)
    for f in chosen:
        for line in _tail(f, lines):
            write(f.stem, line)
    sys.stdout.flush()
    if follow:
        _follow(chosen, write)


def _writer(json_out: bool, *, prefix: bool) -> Callable[[str, str], None]:
    """How a line of an instance is printed: as is, prefixed with its instance, or as NDJSON."""
    import json

    def write(instance: str, line: str) -> None:
        if json_out:
            sys.stdout.write(json.dumps({"instance": instance, "line": line.rstrip("\n")}) + "\n")
        else:
            sys.stdout.write(f"[{instance}] {line}" if prefix else line)

    return write


def _tail(path: Path, n: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        data = fh.read().decode(errors="replace")
    return data.splitlines(keepends=True)[-n:]


def _follow(paths: list[Path], write: Callable[[str, str], None]) -> None:
    handles = {p: open(p, "rb") for p in paths}  # noqa: SIM115 - closed at exit
    for fh in handles.values():
        fh.seek(0, 2)
    try:
        while True:
            for p, fh in handles.items():
                if fh.tell() > p.stat().st_size:  # truncated by rotation
                    fh.seek(0)
                for raw in fh.readlines():
                    write(p.stem, raw.decode(errors="replace"))
            sys.stdout.flush()
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
