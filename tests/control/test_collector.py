"""The collector's pure side: router ``slices`` replies → analysis samples, and its pull bookkeeping.

The real router end of the collector (the ``slices`` op feeding ``Collector.pull``) is exercised in
tests/router/test_slices_op.py.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.control.collector import Collector, samples_from_slices
from shipyard.engine.analysis.measurements import Sample, rollup
from shipyard.errors import ShipyardError
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.metrics import RETENTION_S
from shipyard.primitives.routerproto import RouterError


def sl(sec: int, status: list[int], retried: int = 0, histogram: list[list[int]] | None = None) -> dict[str, Any]:
    return {"sec": sec, "status": status, "upstream_errors": retried, "retried": retried,
            "histogram": histogram or []}


def inst(iid: str, release: str, slices: list[dict[str, Any]], retired: bool = False) -> dict[str, Any]:
    return {"id": iid, "release": release, "ready": not retired, "retired": retired, "slices": slices}


def reply(since: int, now_sec: int, *instances: dict[str, Any]) -> dict[str, Any]:
    return {"env": "prod", "since": since, "now_sec": now_sec, "instances": list(instances)}


def by_key(samples: list[Sample]) -> dict[tuple[str | None, int], Sample]:
    out = {(s.instance, s.t): s for s in samples}
    assert len(out) == len(samples), "one sample per instance and second"
    return out


def test_every_second_gets_a_sample_for_every_instance() -> None:
    r = reply(100, 105, inst("a1", "r1", [sl(101, [0, 0, 3, 0, 0, 0]), sl(103, [0, 0, 1, 0, 0, 0])]),
              inst("b1", "r2", []))
    got = by_key(samples_from_slices(r, {}))
    assert set(got) == {(i, t) for i in ("a1", "b1") for t in range(100, 105)}
    assert [got["a1", t].requests for t in range(100, 105)] == [0, 3, 0, 1, 0]
    quiet = got["b1", 102]
    assert (quiet.release, quiet.requests, quiet.errors, dict(quiet.status), dict(quiet.latency)) == \
        ("r2", 0, 0, {}, {})
    assert samples_from_slices(reply(105, 105, inst("a1", "r1", [])), {}) == []


def test_counts_errors_and_histogram() -> None:
    # status: [none, 1xx, 2xx, 3xx, 4xx, 5xx]; retried attempts count as requests and as errors.
    r = reply(7, 8, inst("a1", "r1", [sl(7, [1, 0, 7, 0, 2, 3], retried=4, histogram=[[40, 5], [300, 8]])]))
    (s,) = samples_from_slices(r, {})
    assert (s.t, s.release, s.instance) == (7, "r1", "a1")
    assert s.requests == 13 + 4
    assert s.errors == 3 + 1 + 4  # 5xx + no answer + retried; 4xx are the client's problem
    assert dict(s.status) == {"none": 1, "2xx": 7, "4xx": 2, "5xx": 3}
    assert dict(s.latency) == {40: 5, 300: 8}


def test_supervisor_readings_only_on_the_newest_second() -> None:
    reading = {"cpu": 0.5, "rss": 100, "memory_limit": 1000, "health_failures": 2, "restarts": 1}
    r = reply(10, 13, inst("a1", "r1", [sl(10, [0, 0, 1, 0, 0, 0])]),
              inst("a2", "r1", [sl(12, [0, 0, 1, 0, 0, 0])]))
    got = by_key(samples_from_slices(r, {"a1": reading, "a2": {**reading, "restarts": 4}}))
    for iid in ("a1", "a2"):
        for t in (10, 11):
            s = got[iid, t]
            assert (s.cpu, s.rss, s.memory_limit, s.health_failures, s.restarts) == (None,) * 5
    newest = got["a1", 12]  # no traffic that second, still carries the reading
    assert (newest.requests, newest.cpu, newest.rss, newest.memory_limit, newest.health_failures,
            newest.restarts) == (0, 0.5, 100, 1000, 2, 1)
    assert newest.memory_share == 0.1
    assert (got["a2", 12].requests, got["a2", 12].restarts) == (1, 4)


def test_retired_instances_only_while_they_have_slices() -> None:
    r = reply(0, 3, inst("old1", "r0", [], retired=True),
              inst("old2", "r0", [sl(1, [0, 0, 2, 0, 0, 0])], retired=True),
              inst("a1", "r1", []))
    got = by_key(samples_from_slices(r, {}))
    assert {i for i, _ in got} == {"old2", "a1"}
    # A retired instance that still finished requests gets every second, like any other.
    assert [got["old2", t].requests for t in range(3)] == [0, 2, 0]


def test_rollup_gives_per_release_sums() -> None:
    r = reply(50, 52,
              inst("a1", "r1", [sl(50, [0, 0, 10, 0, 0, 1], histogram=[[5, 11]]),
                                sl(51, [1, 0, 4, 0, 0, 0], retried=2, histogram=[[5, 2], [6, 3]])]),
              inst("a2", "r1", [sl(50, [0, 0, 5, 0, 1, 0], histogram=[[5, 6]])]),
              inst("b1", "r2", [sl(51, [0, 0, 0, 0, 0, 9], histogram=[[9, 9]])]))
    readings = {"a1": {"cpu": 0.25, "restarts": 0}, "a2": {"cpu": 0.5, "restarts": 2},
                "b1": {"cpu": 1.0, "restarts": 1}}
    rel = {(s.release, s.t): s for s in rollup(samples_from_slices(r, readings))}
    assert set(rel) == {("r1", 50), ("r1", 51), ("r2", 50), ("r2", 51)}
    assert all(s.instance is None for s in rel.values())
    r1_50, r1_51 = rel["r1", 50], rel["r1", 51]
    assert (r1_50.requests, r1_50.errors, dict(r1_50.status), dict(r1_50.latency)) == \
        (17, 1, {"2xx": 15, "4xx": 1, "5xx": 1}, {5: 17})
    assert (r1_51.requests, r1_51.errors, dict(r1_51.status), dict(r1_51.latency)) == \
        (7, 3, {"none": 1, "2xx": 4}, {5: 2, 6: 3})
    assert (r1_50.cpu, r1_51.cpu, r1_51.restarts) == (None, 0.75, 2)  # CPU summed, restarts: worst instance
    assert (rel["r2", 50].requests, rel["r2", 51].requests, rel["r2", 51].errors) == (0, 9, 9)


_status_counts = st.lists(st.integers(0, 50), min_size=6, max_size=6)


@given(since=st.integers(0, 10_000), span=st.integers(0, 6),
       data=st.lists(st.tuples(st.dictionaries(st.integers(0, 5), st.tuples(_status_counts, st.integers(0, 5)),
                                               max_size=6), st.booleans()), min_size=1, max_size=4))
def test_totals_are_kept(since: int, span: int, data: list[tuple[dict[int, tuple[list[int], int]], bool]]) -> None:
    insts = []
    for k, (secs, retired) in enumerate(data):
        slices = [sl(since + off, status, retried) for off, (status, retried) in sorted(secs.items()) if off < span]
        insts.append(inst(f"i{k}", f"r{k % 2}", slices, retired))
    samples = samples_from_slices(reply(since, since + span, *insts), {})
    kept = [i for i in insts if i["slices"] or not i["retired"]]
    assert len(samples) == len(kept) * span
    assert all(since <= s.t < since + span for s in samples)
    assert sum(s.requests for s in samples) == sum(sum(x["status"]) + x["retried"] for i in kept for x in i["slices"])
    assert sum(s.errors for s in samples) == sum(x["status"][0] + x["status"][5] + x["retried"]
                                                 for i in kept for x in i["slices"])
    assert sum(s.requests for s in rollup(samples)) == sum(s.requests for s in samples)


# -- Collector bookkeeping with a stand-in router link (the router side is real in tests/router) ---------

def _collector(replies: list[dict[str, Any]], statuses: list[Any]) -> tuple[Collector, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    async def call(op: str, **fields: Any) -> dict[str, Any]:
        calls.append({"op": op, **fields})
        reply = replies.pop(0)
        if not reply.pop("ok"):
            raise RouterError(reply["error"])
        return reply

    link: Any = SimpleNamespace(call=call)
    sup: Any = SimpleNamespace(all=lambda env: list(statuses))
    return Collector(link, sup, ManualClock(), "prod"), calls


def _status(iid: str, restarts: int, state: str = "ready") -> Any:
    return SimpleNamespace(id=iid, state=state, cpu_percent=50.0, rss_bytes=2048,
                           consecutive_health_failures=1, restarts=restarts, memory_limit=None)


def test_pull_continues_where_it_stopped_and_keeps_fifteen_minutes() -> None:
    a = inst("a1", "r1", [])
    t0 = 1_000_000
    replies = [{"ok": True, **reply(t0, t0 + 1, a)},
               {"ok": True, **reply(t0 + 1, t0 + 3, a)},
               {"ok": True, **reply(t0 + 3, t0 + RETENTION_S + 2, a)},
               {"ok": False, "error": "unknown environment 'prod'"}]
    statuses = [_status("a1", restarts=3)]
    col, calls = _collector(replies, statuses)

    async def go() -> None:
        waiter = asyncio.ensure_future(col.next_tick(timeout=5.0))
        await asyncio.sleep(0)
        assert await col.pull() == t0 + 1
        assert await waiter, "a pull wakes whoever waits for the next tick"
        assert await col.pull() == t0 + 3
        assert [s.t for s in col.since(0)] == [t0, t0 + 1, t0 + 2]
        statuses[0] = _status("a1", restarts=5, state="crashed")
        assert await col.pull() == t0 + RETENTION_S + 2
        assert col.samples[0].t == t0 + 2 and len(col.samples) == RETENTION_S
        newest = col.samples[-1]
        # Restarts count from when the collector first saw the instance; a dead one has no CPU/memory.
        assert (newest.restarts, newest.cpu, newest.rss, newest.health_failures) == (2, None, None, 1)
        assert (col.samples[0].restarts, col.samples[1].restarts) == (0, None)  # pull 2 newest; pull 3 older
        with pytest.raises(ShipyardError, match="unknown environment 'prod'"):
            await col.pull()
        assert col.end == t0 + RETENTION_S + 2, "a failed pull does not move the end"

    asyncio.run(go())
    assert [c.get("since") for c in calls] == [None, t0 + 1, t0 + 3, t0 + RETENTION_S + 2]
    assert {c["op"] for c in calls} == {"slices"} and {c["env"] for c in calls} == {"prod"}


def test_readings_report_cpu_in_cores_for_live_instances() -> None:
    col, _ = _collector([], [_status("a1", restarts=0), _status("a2", restarts=1, state="restarting")])
    got = col.readings()
    assert got["a1"]["cpu"] == 0.5 and got["a1"]["rss"] == 2048 and got["a1"]["memory_limit"] > 0
    assert got["a2"]["cpu"] is None and got["a2"]["restarts"] == 0
