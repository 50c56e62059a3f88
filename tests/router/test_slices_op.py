"""The ``slices`` op (what the control plane's collector pulls): finished whole seconds per instance.

A real router process and real upstreams; ``Series.finished_between`` is also checked on its own.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from shipyard.control.collector import Collector, samples_from_slices
from shipyard.engine.analysis.measurements import rollup
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.metrics import Series, bucket_bounds
from shipyard.primitives.pgcluster import free_port
from shipyard.primitives.routerproto import AsyncRouterClient

from .helpers import RouterProc, Upstream, pool, read_response

CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


# -- Series.finished_between -------------------------------------------------------------------------

def test_finished_between_is_whole_seconds_oldest_first() -> None:
    t = 1_700_000_000  # wall seconds, as the router records them
    s = Series("prod", "r1", "a1")
    assert s.finished_between(t - 900, t) == [], "a series with no request has no slice"
    for sec, status in ((t, 200), (t, 503), (t + 1, 200), (t + 3, 200)):
        s.record(sec, status, 0.01, 0, 0)
    s.note_upstream_error(t + 3)
    assert [x.sec for x in s.finished_between(t, t + 3)] == [t, t + 1], "the current second is left out"
    assert [x.sec for x in s.finished_between(t - 5, t + 4)] == [t, t + 1, t + 3]
    assert [x.sec for x in s.finished_between(t + 1, t + 2)] == [t + 1]
    assert s.finished_between(t + 2, t + 3) == [] and s.finished_between(t + 4, t + 9) == []
    first, _, cur = s.finished_between(t, t + 4)
    assert (first.status, first.retried, sum(first.hist.values())) == ([0, 0, 1, 0, 0, 1], 0, 2)
    assert (cur.retried, cur.upstream_errors, cur.status[2]) == (1, 1, 1)


# -- the op on a real router ---------------------------------------------------------------------------

def one(s: socket.socket, path: str) -> tuple[int, str]:
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, headers, _ = read_response(s)
    return status, headers["x-instance"]


def totals(replies: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per instance: requests by status class, retried attempts and histogram counts over many replies."""
    out: dict[str, Counter[str]] = {}
    for r in replies:
        for inst in r["instances"]:
            c = out.setdefault(inst["id"], Counter())
            for sl in inst["slices"]:
                assert r["since"] <= sl["sec"] < r["now_sec"], (sl["sec"], r["since"], r["now_sec"])
                c.update({k: n for k, n in zip(CLASSES, sl["status"], strict=True) if n})
                c["retried"] += sl["retried"]
                c["histogram"] += sum(n for _, n in sl["histogram"])
    return out


def wait_next_second(after: float) -> None:
    """Sleep until the second holding ``after`` is over (plus a margin for the router's clock)."""
    time.sleep(max(0.0, int(after) + 1.05 - time.time()))


def test_slices_cover_each_second_once_and_leave_out_the_current_one(
        router: RouterProc, upstreams: Callable[..., list[Upstream]]) -> None:
    a, b = upstreams("a1", "b1")
    port = free_port()
    router.set_table("prod", port, [pool("r1", [a]), pool("r2", [b], role="canary")], {"r1": 50, "r2": 50})
    start = time.time()
    sent: dict[str, Counter[str]] = {"a1": Counter(), "b1": Counter()}
    slow: Counter[str] = Counter()
    replies: list[dict[str, Any]] = []
    mid: dict[str, Any] | None = None
    paths = ("/", "/status?code=503", "/slow?ms=25", "/status?code=404", "/")  # odd: both instances get all
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        k = 0
        while time.time() < start + 1.6 or mid is None:
            path = paths[k % len(paths)]
            status, iid = one(s, path)
            sent[iid][f"{status // 100}xx"] += 1
            slow[iid] += path.startswith("/slow")
            k += 1
            if mid is None and time.time() > int(start) + 1.2:
                # A request was just answered in this second: it must not be in a reply of this second.
                before = int(time.time())
                mid = router.call("slices", env="prod", since=int(start) - 1)
                after = int(time.time())
                replies.append(mid)
        last = time.time()
    assert mid is not None and before <= mid["now_sec"] <= after
    wait_next_second(last)
    end = router.call("slices", env="prod", since=mid["now_sec"])
    replies.append(end)
    assert end["since"] == mid["now_sec"] and end["now_sec"] > int(last)
    assert end["env"] == "prod" and end["histogram_scheme"]
    assert end["roles"] == {"r1": "stable", "r2": "canary"} and end["weights"] == {"r1": 50.0, "r2": 50.0}
    assert {(i["id"], i["release"], i["ready"], i["retired"]) for i in end["instances"]} == \
        {("a1", "r1", True, False), ("b1", "r2", True, False)}

    # Two consecutive pulls partition the traffic: nothing lost, nothing counted twice.
    got = totals(replies)
    for iid in ("a1", "b1"):
        assert sum(sent[iid].values()) > 10
        assert {k: n for k, n in got[iid].items() if k.endswith("xx")} == dict(sent[iid])
        assert got[iid]["histogram"] == sum(sent[iid].values()) and got[iid]["retried"] == 0
    # One second per slice, ascending; slow requests land in buckets of 25 ms or more.
    # (A pull may hold no slice of an instance: the first second can be a sliver of traffic.)
    for r in (mid, end):
        for inst in r["instances"]:
            secs = [sl["sec"] for sl in inst["slices"]]
            assert secs == sorted(set(secs)) and all(r["since"] <= sec < r["now_sec"] for sec in secs)
    for iid in ("a1", "b1"):
        assert slow[iid] >= 3
        hist = [(i, n) for r in replies for inst in r["instances"] if inst["id"] == iid
                for sl in inst["slices"] for i, n in sl["histogram"]]
        assert slow[iid] <= sum(n for i, n in hist if bucket_bounds(i)[1] > 0.025) < sum(n for _, n in hist)

    # Without `since` the reply is the last finished second; far back is cut at the 15-minute retention.
    last_only = router.call("slices", env="prod")
    assert last_only["since"] == last_only["now_sec"] - 1
    old = router.call("slices", env="prod", since=0)
    assert old["since"] == old["now_sec"] - 15 * 60


def test_a_refusing_canary_shows_as_retried_errors(router: RouterProc,
                                                   upstreams: Callable[..., list[Upstream]]) -> None:
    """A canary refusing connections: the router retries on stable so clients see no error, but every
    failed attempt is counted on the canary, and the collector turns them into canary errors."""
    (a,) = upstreams("a1")
    port = free_port()
    dead = {"id": "c1", "host": "127.0.0.1", "port": free_port(), "ready": True}  # nothing listens there
    router.set_table("prod", port, [pool("r1", [a]), {"release": "r2", "role": "canary", "instances": [dead]}],
                     {"r1": 80, "r2": 20})
    client = AsyncRouterClient(router.sock)

    async def call(op: str, **fields: Any) -> dict[str, Any]:
        return await client.call(op, timeout=10.0, fields=fields)

    link: Any = SimpleNamespace(call=call)
    supervisor: Any = SimpleNamespace(all=lambda env: [])
    col = Collector(link, supervisor, SystemClock(), "prod")
    start = int(time.time())
    col.end = start
    seen: Counter[int] = Counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(100):
            status, iid = one(s, "/")
            assert iid == "a1"
            seen[status] += 1
        last = time.time()
    assert seen == Counter({200: 100}), "retried on stable: no client saw the canary fail"
    wait_next_second(last)
    asyncio.run(col.pull())

    got = totals([router.call("slices", env="prod", since=start)])
    assert got["a1"]["2xx"] == 100 and got["a1"]["retried"] == 0
    retried = got["c1"]["retried"]
    assert retried >= 10, got  # every request routed to the canary was refused once
    assert got["c1"]["histogram"] == 0 and not any(k.endswith("xx") for k in got["c1"])

    # The same seconds as the collector's samples: every second for both instances, errors on the canary.
    assert col.end is not None and col.end > int(last)
    samples = list(col.since(start))
    assert {(x.instance, x.t) for x in samples} == {(i, t) for i in ("a1", "c1") for t in range(start, col.end)}
    rel = {r: [x for x in rollup(samples) if x.release == r] for r in ("r1", "r2")}
    assert sum(x.requests for x in rel["r2"]) == sum(x.errors for x in rel["r2"]) == retried
    assert sum(x.requests for x in rel["r1"]) == 100 and sum(x.errors for x in rel["r1"]) == 0
    # The pure conversion agrees with what the collector stored.
    again = samples_from_slices(router.call("slices", env="prod", since=start) | {"now_sec": col.end}, {})
    assert sorted((x.instance or "", x.t, x.requests, x.errors) for x in again) == \
        sorted((x.instance or "", x.t, x.requests, x.errors) for x in samples)
