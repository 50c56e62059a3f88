"""Which instance log files ``shipyard logs`` shows and their newest lines: used by the control plane's
``GET /v1/logs`` (control/logs_api.py) and by the local CLI when the control plane is down (no store here:
the CLI may not import it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.control.logfiles import Follower, tail
from shipyard.errors import BadInput


def choose_logs(logdir: Path, live: dict[str, dict[str, Any]], instance: int | None,
                process: str | None = None, types: tuple[str, ...] = ()) -> list[Path]:
    """The log files to show: the running instances' (else every file of the environment), or instance N's;
    with ``process``, only that process type's (``types``: the spec's process types)."""
    files = sorted(logdir.glob("*.log")) if logdir.is_dir() else []
    chosen = [f for f in files if f.stem in live] or files
    if process is not None:
        # A live instance says its type; an old log file by its name (<env>-<release>-<type>-<n>-<hex>).
        others = [t for t in types if t != "web"]
        chosen = [f for f in chosen if (live[f.stem].get("process", "web") == process if f.stem in live
                                        else f"-{process}-" in f.stem if process != "web"
                                        else not any(f"-{t}-" in f.stem for t in others))]
        if not chosen:
            raise BadInput(f"no instance of process type {process!r} in {logdir.name}")
    if instance is not None:
        chosen = [f for f in chosen if f.stem in live and live[f.stem]["index"] == instance] or \
                 [f for f in chosen if f.stem.split("-")[-2:-1] == [str(instance)]]
        if not chosen:
            raise BadInput(f"no instance {instance} in {logdir.name}")
    return chosen


def read_history(chosen: list[Path], live: dict[str, dict[str, Any]], n: int,
                 ends: dict[Path, int] | None = None) -> list[dict[str, Any]]:
    """Each file's newest ``n`` lines (up to ``ends``, where its follower starts) and its anchor time: the
    instance's start, or the file's last write for an instance that is gone."""
    out = []
    for f in chosen:
        started = (live.get(f.stem) or {}).get("started_at")
        try:
            anchor = float(started) if started else f.stat().st_mtime
        except FileNotFoundError:  # removed with its instance a moment ago
            continue
        out.append({"instance": f.stem, "anchor": anchor, "lines": tail(f, n, end=(ends or {}).get(f))})
    return out


def poll(followers: dict[Path, Follower]) -> list[tuple[str, str]]:
    """New lines of every followed file (across rotations), as (instance, text)."""
    return [(p.stem, text) for p, f in followers.items() for text in f.poll()]
