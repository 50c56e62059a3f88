"""shipyard logs on an environment with ``target = "kubernetes"``: the serving release's pods' logs, read
from the API server (no control plane), each line prefixed by its pod's name. ``--lines N`` counts across
the pods, interleaved by the kubelet's stamps; ``--follow`` keeps reading every pod, joining pods that
start later (a rollout's, a restarted container's). ``--grep``, ``--since`` and ``--until`` filter as on
one machine. Helper of cli/logs.py (control/kube/podlogs.py reads the logs)."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.cli.app import AppContext

if TYPE_CHECKING:
    from shipyard.control.kube.cluster import Cluster
    from shipyard.control.kube.podlogs import PodLine

Keep = Callable[["PodLine"], bool]
Write = Callable[["PodLine"], None]

# Options of the local logs that have no counterpart on a cluster.
UNSUPPORTED = {"instance": "--instance", "deployment": "--deployment", "trace": "--trace", "router": "--router"}


def logs(app: AppContext, env: str, *, follow: bool, lines: int, timestamps: bool, json_out: bool,
         grep: str | None, since: str | None, until: str | None, process: str | None, **local: Any) -> None:
    from shipyard.control.logquery import matcher, parse_since
    from shipyard.errors import BadInput

    for key, flag in UNSUPPORTED.items():
        if local.get(key) not in (None, False):
            app.abort(f"{flag} is not available on kubernetes environments (their logs are the pods'; "
                      "see docs/kubernetes.md, Logs)", 2)
    if process not in (None, "web"):
        app.abort(f"--process {process}: a kubernetes environment runs the web process only", 2)
    now = time.time()
    try:
        t0 = parse_since(since, now) if since is not None else None
        t1 = parse_since(until, now, "--until") if until is not None else None
        match = matcher(grep)
    except BadInput as err:
        app.abort(str(err), 2)
    write = _writer(json_out, timestamps)

    def keep(line: PodLine) -> bool:
        if t0 is not None and (line.time is None or line.time < t0):
            return False
        if t1 is not None and line.time is not None and line.time > t1:
            return False
        return bool(match(line.text))

    try:
        asyncio.run(_main(app, env, follow=follow, lines=lines, keep=keep, write=write,
                          since=None if t0 is None else max(1, math.ceil(now - t0) + 1),
                          filtered=grep is not None or until is not None))
    except KeyboardInterrupt:
        pass  # -f ends with Ctrl-C, as on one machine


async def _pods(cluster: Cluster, selector: dict[str, str]) -> list[str]:
    from shipyard.engine.kube.run_job import has_output

    pods = await cluster.objects("v1", "Pod", labels=selector)
    return sorted(p["metadata"]["name"] for p in pods if has_output(p))


async def _main(app: AppContext, env: str, *, follow: bool, lines: int, keep: Keep, write: Write,
                since: int | None, filtered: bool) -> None:
    from shipyard.cli.kube_deploy import release_input
    from shipyard.control.kube import records
    from shipyard.control.kube.cluster import Cluster
    from shipyard.control.kube.podlogs import Follower, history, newest
    from shipyard.engine.kube.render import RELEASE_LABEL, selector_labels
    from shipyard.primitives.clock import SystemClock

    cluster = Cluster.connect(app.env(env).kube, app.project.dir, env)
    follower: Follower | None = None
    try:
        await cluster.check()
        inp = release_input(app, env, "", with_secrets=False)
        serving = (await records.read_env(cluster, inp.base)).current
        selector = {**selector_labels(inp), "app.kubernetes.io/component": "web"}
        if serving:  # else every pod of the environment (nothing recorded as serving)
            selector[RELEASE_LABEL] = serving[:63]
        pods = await _pods(cluster, selector)
        if not pods and not follow:
            app.echo(f"no pods of {env} have logs yet (namespace {cluster.namespace})", stderr=True)
            return
        # A filter may drop most lines: then the whole logs are read and the newest N matches shown.
        per_pod = await history(cluster, pods, tail=None if filtered else max(lines, 0), since=since)
        for line in newest({p: [x for x in ls if keep(x)] for p, ls in per_pod.items()}, lines):
            write(line)
        sys.stdout.flush()
        if not follow:
            return
        clock = SystemClock()
        follower = Follower(cluster, {p: (ls[-1] if ls else None) for p, ls in per_pod.items()})
        watcher = asyncio.create_task(follower.watch(lambda: _pods(cluster, selector), clock.time, clock.sleep))
        try:
            async for line in follower.lines():
                if keep(line):
                    write(line)
                    sys.stdout.flush()
        finally:
            watcher.cancel()
    finally:
        if follower is not None:
            await follower.close()
        await cluster.close()


def _writer(json_out: bool, timestamps: bool) -> Write:
    from shipyard.cli.logmerge import stamp

    def write(line: PodLine) -> None:
        if json_out:
            sys.stdout.write(json.dumps({"instance": line.pod, "pod": line.pod, "line": line.text,
                                         "time": line.time}) + "\n")
            return
        sys.stdout.write((stamp(line.time) + " " if timestamps else "") + f"[{line.pod}] {line.text}\n")

    return write
