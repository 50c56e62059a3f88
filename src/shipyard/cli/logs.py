"""shipyard logs: an environment's instance output (stdout and stderr), newest lines across instances.

``--lines N`` counts over the environment: the newest N lines of all the chosen instances together,
interleaved by time as far as the lines tell (``cli/logmerge.py``: instances write straight into their
files, so a line's time is the one it carries, else the one of the line above it). ``--timestamps``
shows that time before each line and places the control plane's recorded instance events (started,
restarted, crashed, unhealthy, stopped) among the lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext
    from shipyard.cli.logmerge import Event, Line
    from shipyard.control.logfiles import Follower

INSTANCE_EVENTS = ("instance.started", "instance.adopted", "instance.restarted", "instance.crashed",
                   "instance.unhealthy", "instance.spawn_failed", "instance.stopped")


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment.")],
    instance: Annotated[int | None, typer.Option("--instance", "-i", help="Only instance N (its index).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Newest lines across the instances shown.")] = 50,
    timestamps: Annotated[bool, typer.Option(
        "--timestamps", "-t", help="Each line's time where known, and the instances' start/restart/stop events.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line: {instance, line}.")] = False,
    deployment: Annotated[int | None, typer.Option("--deployment", "-d",
                                                   help="The instances deployment N started (also stopped ones).")] = None,
    process: Annotated[str | None, typer.Option("--process", "-p",
                                                help="Only instances of this process type (web, worker…).")] = None,
) -> None:
    """Print (and follow) the output of an environment's instances."""
    from urllib.parse import quote

    from shipyard.cli.app import AppContext
    from shipyard.errors import ControlPlaneUnavailable

    app = AppContext.of(ctx)
    app.env(env)
    if lines < 0:
        app.abort(f"--lines must be 0 or more, got {lines}", 2)
    logdir = app.paths.state / "logs" / env
    live: dict[str, dict[str, Any]] = {}
    up = True
    if deployment is not None:
        started = app.client.call("GET", f"/v1/instances?env={quote(env)}&deployment={deployment}")
        chosen = [Path(i["log"]) for i in started if Path(i["log"]).exists()]
        if not chosen:
            app.abort(f"deployment {deployment} on {env} left no instance output", 2)
    else:
        try:
            live = {i["id"]: i for i in app.client.call("GET", f"/v1/instances?env={quote(env)}")}
        except ControlPlaneUnavailable:
            # Instances outlive the control plane, and so do their logs: read the files without it.
            up = False
            app.warn("the control plane is not running; showing every log file of the environment")
        files = sorted(logdir.glob("*.log")) if logdir.is_dir() else []
        # Prefer the instances that are running now; fall back to every log we have.
        chosen = [f for f in files if f.stem in live] or files
        if process is not None:
            # A live instance says its type; an old log file by its name (<env>-<release>-<type>-<n>-<hex>).
            others = [t for t in app.spec.processes if t != "web"]
            chosen = [f for f in chosen if (live[f.stem].get("process", "web") == process if f.stem in live
                                            else f"-{process}-" in f.stem if process != "web"
                                            else not any(f"-{t}-" in f.stem for t in others))]
            if not chosen:
                app.abort(f"no instance of process type {process!r} in {env}", 2)
        if instance is not None:
            chosen = [f for f in chosen if f.stem in live and live[f.stem]["index"] == instance] or \
                     [f for f in chosen if f.stem.split("-")[-2:-1] == [str(instance)]]
            if not chosen:
                app.abort(f"no instance {instance} in {env}", 2)
    if not chosen:
        app.echo(f"no logs for {env} yet", stderr=True)
        return
    write = _writer(json_out, prefix=len(chosen) > 1, timestamps=timestamps)
    from shipyard.control.logfiles import Follower

    # Followers first, and the history up to where they start: no line shown twice, none missed between.
    followers = {p: Follower(p) for p in chosen} if follow else {}
    ends = {p: f.position for p, f in followers.items()}
    for item in _history(app, env, chosen, live, lines, events=timestamps and up, ends=ends):
        write(item)
    sys.stdout.flush()
    if follow:
        _follow(followers, write)


def _history(app: AppContext, env: str, chosen: list[Path], live: dict[str, dict[str, Any]], n: int, *,
             events: bool, ends: dict[Path, int]) -> list[Line | Event]:
    from shipyard.cli.logmerge import newest, timed, with_events
    from shipyard.control.logfiles import tail

    def anchor(f: Path) -> float:
        started = (live.get(f.stem) or {}).get("started_at")
        return float(started) if started else f.stat().st_mtime

    files = [timed(f.stem, tail(f, n, end=ends.get(f)), anchor(f), k) for k, f in enumerate(chosen)]
    shown = newest(files, n)
    if not events:
        return list(shown)
    # A file read to its end (fewer lines than asked) and nothing left out: its events from the start.
    whole = len(shown) == sum(len(x) for x in files) and all(len(x) < n for x in files)
    return with_events(shown, _events(app, env, {f.stem for f in chosen}), whole=whole)


def _events(app: AppContext, env: str, ids: set[str]) -> list[Event]:
    """The control plane's recorded events about these instances, oldest first."""
    from urllib.parse import urlencode

    from shipyard.cli.logmerge import Event
    from shipyard.errors import ControlPlaneUnavailable

    try:
        # The instances' events of the last day (the lines shown are rarely older).
        rows = app.client.call("GET", "/v1/events?" + urlencode(
            {"env": env, "kinds": ",".join(INSTANCE_EVENTS), "since": "24h"}))["events"]
    except ControlPlaneUnavailable:
        return []
    return [Event(r["data"]["instance"], r["kind"], r["message"], float(r["at"])) for r in rows
            if (r.get("data") or {}).get("instance") in ids]


def _writer(json_out: bool, *, prefix: bool, timestamps: bool) -> Callable[[Line | Event], None]:
    """How a line (or an event) is printed: as is, after its instance and time, or as NDJSON."""
    import json

    from shipyard.cli.logmerge import Event, stamp

    def write(item: Line | Event) -> None:
        if isinstance(item, Event):
            if json_out:
                sys.stdout.write(json.dumps({"instance": item.instance, "event": item.kind, "time": item.time,
                                             "message": item.message}) + "\n")
            else:
                sys.stdout.write(f"{stamp(item.time)} ── {item.message}\n")
            return
        if json_out:
            doc: dict[str, Any] = {"instance": item.instance, "line": item.text}
            if timestamps:
                doc.update(time=item.time, time_source=item.source)
            sys.stdout.write(json.dumps(doc) + "\n")
            return
        head = (stamp(item.time) + " " if timestamps else "") + (f"[{item.instance}] " if prefix else "")
        sys.stdout.write(f"{head}{item.text}\n")

    return write


def _follow(followers: dict[Path, Follower], write: Callable[[Line | Event], None]) -> None:
    from shipyard.cli.logmerge import Line, line_time

    # Followers read across rotations (the rotated prefix is cut out of the live file, not truncated).
    try:
        while True:
            for p, follower in followers.items():
                for text in follower.poll():
                    own = line_time(text)
                    # Not stamped when written: read within one poll (0.25 s) of it.
                    t, source = (own, "line") if own is not None else (time.time(), "read")
                    write(Line(p.stem, text, t, source, t))
            sys.stdout.flush()
            time.sleep(0.25)
    except KeyboardInterrupt:
        pass
