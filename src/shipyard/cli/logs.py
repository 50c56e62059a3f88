"""shipyard logs: an environment's instance output (stdout and stderr)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer


def command(
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    instance: Annotated[int | None, typer.Option("--instance", "-i", help="Only instance N (its index).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines of history per instance.")] = 50,
) -> None:
    """Print (and follow) the output of an environment's instances."""
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.errors import NotFound
    from shipyard.primitives.store import open_store

    project = find_project()
    load_project_spec(project).env(env)
    logdir = project.state_dir / "logs" / env
    store = open_store(None, project.state_dir)
    try:
        live = {i.id: i for i in store.list_instances(env)}
    finally:
        store.close()
    files = sorted(logdir.glob("*.log")) if logdir.is_dir() else []
    # Prefer the instances that are running now; fall back to every log we have.
    chosen = [f for f in files if f.stem in live] or files
    if instance is not None:
        chosen = [f for f in chosen if f.stem in live and live[f.stem].index == instance] or \
                 [f for f in chosen if f.stem.split("-")[-2:-1] == [str(instance)]]
        if not chosen:
            raise NotFound(f"no instance {instance} in {env}")
    if not chosen:
        print(f"no logs for {env} yet", file=sys.stderr)
        return
    prefix = len(chosen) > 1
    for f in chosen:
        for line in _tail(f, lines):
            sys.stdout.write(f"[{f.stem}] {line}" if prefix else line)
    sys.stdout.flush()
    if follow:
        _follow(chosen, prefix)


def _tail(path: Path, n: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        data = fh.read().decode(errors="replace")
    return data.splitlines(keepends=True)[-n:]


def _follow(paths: list[Path], prefix: bool) -> None:
    handles = {p: open(p, "rb") for p in paths}  # noqa: SIM115 - closed at exit
    for fh in handles.values():
        fh.seek(0, 2)
    try:
        while True:
            for p, fh in handles.items():
                if fh.tell() > p.stat().st_size:  # truncated by rotation
                    fh.seek(0)
                for raw in fh.readlines():
                    line = raw.decode(errors="replace")
                    sys.stdout.write(f"[{p.stem}] {line}" if prefix else line)
            sys.stdout.flush()
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
