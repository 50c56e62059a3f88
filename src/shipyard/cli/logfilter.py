"""``shipyard logs --grep/--since/--until/--trace/--router``: the matching lines of an environment's
instance logs (with their rotated copies) and, with ``--router`` or ``--trace``, of the router's access
log (its lines for that environment), interleaved by time, the newest ``--lines`` of them.

The filtering itself is ``control/logquery.filter_lines`` (pure, shared with the control API's route);
this module only reads the files and orders what matched.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext
    from shipyard.cli.logmerge import Event, Line
    from shipyard.control.logfiles import Follower

ROUTER = "router"


def followers_of(chosen: list[Path]) -> dict[Path, Follower]:
    """Followers made before the history is read (a line written in between may show twice, none is missed)."""
    from shipyard.control.logfiles import Follower

    return {p: Follower(p) for p in chosen}


def _only(lines: Iterable[str], needle: str) -> Iterator[str]:
    return (line for line in lines if needle in line)


def _router_lines(app: AppContext, env: str) -> Iterator[str]:
    from shipyard.control.logquery import read_lines

    # The router writes "env":"NAME" verbatim (router/accesslog.py).
    logs = app.paths.state / "logs" / "router"
    # access.log, and access-K.log of router workers ([router] workers): one writer per file.
    files = [logs / "access.log", *sorted(logs.glob("access-[0-9]*.log"))]
    return _only((line for f in files for line in read_lines(f)), f'"env":{json.dumps(env)}')


def filtered_history(app: AppContext, env: str, chosen: list[Path], n: int, *, grep: str | None,
                     since: str | None, until: str | None, trace: str | None, router: bool
                     ) -> tuple[list[Line | Event], Callable[[Line | Event], bool]]:
    """(the newest ``n`` matching lines, oldest first; a predicate for lines read while following)."""
    from shipyard.cli.logmerge import Line
    from shipyard.control.logquery import (
        check_trace,
        filter_lines,
        line_time,
        matcher,
        parse_since,
        read_lines,
    )
    from shipyard.errors import BadInput

    now = time.time()
    try:
        t0 = parse_since(since, now) if since is not None else None
        t1 = parse_since(until, now, "--until") if until is not None else None
        want = check_trace(trace) if trace is not None else None
        match = matcher(grep)
    except BadInput as err:
        app.abort(str(err), 2)
    sources: list[tuple[str, Iterable[str]]] = [(f.stem, read_lines(f)) for f in chosen]
    if router:
        sources.append((ROUTER, _router_lines(app, env)))
    if want is not None:  # a deployment's trace: the control plane's lines about it (control/logsetup.py)
        needle = f'"env": {json.dumps(env)}'
        sources.append(("control", _only(read_lines(app.paths.state / "logs" / "control.log"), needle)))
    found: list[Line] = []
    for k, (name, texts) in enumerate(sources):
        last: float | None = None
        newest: deque[Line] = deque(maxlen=max(n, 0))  # the newest n overall are among each source's newest n
        for i, text in enumerate(filter_lines(texts, grep=grep, since=t0, until=t1, trace=want)):
            own = line_time(text)
            last = own if own is not None else last
            newest.append(Line(name, text, last, "line" if own is not None else "inherited",
                               last if last is not None else 0.0, k, i))
        found += newest
    found.sort(key=lambda x: (x.order, x.file, x.index))
    shown: list[Line | Event] = list(found[-n:] if n > 0 else [])

    def keep(item: Line | Event) -> bool:
        if not isinstance(item, Line):
            return True
        doc_trace = None
        if want is not None:
            doc_trace = want in item.text.lower()
        return match(item.text) and (want is None or bool(doc_trace)) and (t1 is None or time.time() <= t1)

    return shown, keep
