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
from collections.abc import Callable, Iterator
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
    grep: Annotated[str | None, typer.Option("--grep", "-g", help="Only lines holding TEXT (re:PATTERN: a regex).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only lines from then on: 10m, 2h, or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only lines up to then: 5m, or an ISO time.")] = None,
    trace: Annotated[str | None, typer.Option("--trace", help="Only lines of this trace id (32 hex digits); "
                                              "includes the router's access log.")] = None,
    router: Annotated[bool, typer.Option("--router", help="Also the router's access log of the environment.")] = False,
    process: Annotated[str | None, typer.Option("--process", "-p",
                                                help="Only instances of this process type (web, worker…).")] = None,
) -> None:
    """Print (and follow) the output of an environment's instances."""
    from shipyard.cli.app import AppContext

    app = AppContext.of(ctx)
    app.check_env(env)
    if lines < 0:
        app.abort(f"--lines must be 0 or more, got {lines}", 2)
    if app.remote is None and app.env(env).target == "kubernetes":  # the pods' logs, from the API server
        from shipyard.cli.kube_logs import logs as kube_logs

        kube_logs(app, env, follow=follow, lines=lines, timestamps=timestamps, json_out=json_out, grep=grep,
                  since=since, until=until, process=process, instance=instance, deployment=deployment,
                  trace=trace, router=router)
        return
    query: dict[str, Any] = {"env": env, "lines": lines, "follow": int(follow)}
    if instance is not None:
        query["instance"] = instance
    if deployment is not None:
        query["deployment"] = deployment
    if process is not None:
        query["process"] = process
    if any(x is not None for x in (grep, since, until, trace)) or router:
        _filtered(app, env, instance, lines, follow, json_out, timestamps,
                  grep=grep, since=since, until=until, trace=trace, router=router or trace is not None)
        return
    files, more, up = _open(app, env, query, instance)
    if not files:
        app.echo(f"no logs for {env} yet", stderr=True)
        return
    write = _writer(json_out, prefix=len(files) > 1, timestamps=timestamps)
    for item in _history(app, env, files, lines, events=timestamps and up):
        write(item)
    sys.stdout.flush()
    if follow:
        _follow(more, write)


def _filtered(app: AppContext, env: str, instance: int | None, n: int, follow: bool, json_out: bool,
              timestamps: bool, **filters: Any) -> None:
    """--grep/--since/--until/--trace/--router: read the files here (rotated copies, the access log, the
    control log) through control/logquery.py, on the control plane's machine."""
    if app.remote is not None:
        app.abort("--grep, --since, --until, --trace and --router read the log files on the control plane's "
                  "machine: run them there (SHIPYARD_URL serves unfiltered logs only, for now)", 2)
    from shipyard.cli.logfilter import filtered_history, followers_of
    from shipyard.control.logreading import choose_logs

    chosen = choose_logs(app.paths.state / "logs" / env, {}, instance)
    write = _writer(json_out, prefix=True, timestamps=timestamps)
    followers = followers_of(chosen) if follow else {}
    history, keep = filtered_history(app, env, chosen, n, **filters)
    for item in history:
        write(item)
    sys.stdout.flush()
    if follow:
        _follow(_poll_here(followers), lambda item: write(item) if keep(item) else None)


def _open(app: AppContext, env: str, query: dict[str, Any], instance: int | None
          ) -> tuple[list[dict[str, Any]], Iterator[tuple[str, str, float]], bool]:
    """The files' history and the lines that follow: read by the control plane (local or SHIPYARD_URL), or
    here when the local one is down — instances outlive it, and so do their logs."""
    from urllib.parse import urlencode

    from shipyard.errors import ControlPlaneUnavailable

    try:
        events = app.client.stream("/v1/logs?" + urlencode(query), {}, method="GET")
        first = next(events, {})
    except ControlPlaneUnavailable:
        if app.remote is not None or query.get("deployment") is not None:
            raise
        app.warn("the control plane is not running; showing every log file of the environment")
        return _local(app, env, int(query["lines"]), instance, bool(query["follow"]))
    return list(first.get("files", [])), _remote_lines(events), True


def _remote_lines(events: Iterator[dict[str, Any]]) -> Iterator[tuple[str, str, float]]:
    for ev in events:
        if ev.get("event") == "line":
            yield str(ev["instance"]), str(ev["text"]), float(ev["read_at"])


def _local(app: AppContext, env: str, n: int, instance: int | None, follow: bool
           ) -> tuple[list[dict[str, Any]], Iterator[tuple[str, str, float]], bool]:
    from shipyard.control.logfiles import Follower
    from shipyard.control.logreading import choose_logs, read_history

    chosen = choose_logs(app.paths.state / "logs" / env, {}, instance)
    followers = {p: Follower(p) for p in chosen} if follow else {}
    files = read_history(chosen, {}, n, {p: f.position for p, f in followers.items()})
    return files, _poll_here(followers), False


def _poll_here(followers: dict[Path, Follower]) -> Iterator[tuple[str, str, float]]:
    from shipyard.control.logreading import poll

    while followers:
        for instance, text in poll(followers):
            yield instance, text, time.time()
        time.sleep(0.25)


def _history(app: AppContext, env: str, files: list[dict[str, Any]], n: int, *, events: bool
             ) -> list[Line | Event]:
    from shipyard.cli.logmerge import newest, timed, with_events

    timed_files = [timed(f["instance"], f["lines"], float(f["anchor"]), k) for k, f in enumerate(files)]
    shown = newest(timed_files, n)
    if not events:
        return list(shown)
    # A file read to its end (fewer lines than asked) and nothing left out: its events from the start.
    whole = len(shown) == sum(len(x) for x in timed_files) and all(len(x) < n for x in timed_files)
    return with_events(shown, _events(app, env, {f["instance"] for f in files}), whole=whole)


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


def _follow(lines: Iterator[tuple[str, str, float]], write: Callable[[Line | Event], None]) -> None:
    from shipyard.cli.logmerge import Line, line_time

    try:
        for instance, text, read_at in lines:
            own = line_time(text)
            # Not stamped when written: read within one poll (0.25 s) of it.
            t, source = (own, "line") if own is not None else (read_at, "read")
            write(Line(instance, text, t, source, t))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
