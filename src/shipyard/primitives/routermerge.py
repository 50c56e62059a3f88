"""Merging the replies of several router workers into the reply one router would have sent.

With ``[environments.X.router] workers = N`` the kernel spreads an environment's connections over N router
processes (SO_REUSEPORT); each counts only what it proxied. The control plane asks every worker and folds
their replies here, so the collector, the canary judgement, the drain and the metrics see one environment.
Pure functions over the JSON the router's ``stats``, ``slices`` and ``drain`` ops send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.primitives.metrics.histogram import Histogram

Reply = Mapping[str, Any]

_STATUS_KEYS = ("1xx", "2xx", "3xx", "4xx", "5xx", "none")
_SUMMED = ("upstream_errors", "inflight", "bytes_in", "bytes_out")


def merge_slices(replies: Sequence[Reply]) -> dict[str, Any]:
    """One ``slices`` reply from several. ``now_sec`` is the earliest of the workers' (a second that one
    worker has finished may still be open in another), and only seconds before it are kept, so the next
    pull (``since = now_sec``) neither misses nor repeats a second of any worker."""
    if len(replies) == 1:
        return dict(replies[0])
    now_sec = min(int(r["now_sec"]) for r in replies)
    instances: dict[str, dict[str, Any]] = {}
    by_sec: dict[str, dict[int, dict[str, Any]]] = {}
    for reply in replies:
        for inst in reply.get("instances") or ():
            iid = str(inst["id"])
            merged = instances.get(iid)
            if merged is None:
                merged = instances[iid] = {"id": iid, "release": inst.get("release"), "ready": inst.get("ready"),
                                           "retired": inst.get("retired")}
                by_sec[iid] = {}
            else:  # a worker that has the newer table decides
                merged["ready"] = bool(merged["ready"]) or bool(inst.get("ready"))
                merged["retired"] = bool(merged["retired"]) and bool(inst.get("retired"))
            secs = by_sec[iid]
            for s in inst.get("slices") or ():
                sec = int(s["sec"])
                if sec >= now_sec:
                    continue
                have = secs.get(sec)
                if have is None:
                    secs[sec] = {"sec": sec, "status": list(s["status"]), "upstream_errors": int(s["upstream_errors"]),
                                 "retried": int(s.get("retried", 0)), "histogram": dict(_pairs(s["histogram"]))}
                    continue
                have["status"] = [a + b for a, b in zip(have["status"], s["status"], strict=True)]
                have["upstream_errors"] += int(s["upstream_errors"])
                have["retried"] += int(s.get("retried", 0))
                hist = have["histogram"]
                for i, n in _pairs(s["histogram"]):
                    hist[i] = hist.get(i, 0) + n
    for iid, inst in instances.items():
        inst["slices"] = [{**s, "histogram": sorted(s["histogram"].items())} for _, s in sorted(by_sec[iid].items())]
    first = replies[0]
    weights: dict[str, Any] = {}
    roles: dict[str, Any] = {}
    for reply in replies:
        weights.update(reply.get("weights") or {})
        roles.update(reply.get("roles") or {})
    return {"env": first.get("env"), "since": max(int(r.get("since", 0)) for r in replies), "now_sec": now_sec,
            "histogram_scheme": first.get("histogram_scheme"), "roles": roles, "weights": weights,
            "instances": list(instances.values())}


def merge_stats(replies: Sequence[Reply]) -> dict[str, Any]:
    """One ``stats`` reply from several: counts and histograms summed, rates and quantiles recomputed."""
    if len(replies) == 1:
        return dict(replies[0])
    first = replies[0]
    window_s = float(first.get("window_s") or 1.0)
    releases: dict[str, dict[str, Any]] = {}
    for reply in replies:
        for name, rel in (reply.get("releases") or {}).items():
            have = releases.get(name)
            if have is None:
                releases[name] = {**rel, "instances": {k: dict(v) for k, v in (rel.get("instances") or {}).items()}}
                continue
            _add_window(have, rel)
            have["draining"] = bool(have.get("draining")) or bool(rel.get("draining"))
            for iid, inst in (rel.get("instances") or {}).items():
                mine = have["instances"].get(iid)
                if mine is None:
                    have["instances"][iid] = dict(inst)
                else:
                    _add_window(mine, inst)
    for rel in releases.values():
        _finish(rel, window_s)
        for inst in rel["instances"].values():
            _finish(inst, window_s)
    unrouted = dict(first.get("unrouted") or {})
    for reply in replies[1:]:
        if reply.get("unrouted"):
            _add_window(unrouted, reply["unrouted"])
    if unrouted:
        _finish(unrouted, window_s)
    return {**first, "releases": releases, "unrouted": unrouted,
            "time": max(float(r.get("time", 0.0)) for r in replies),
            "connections": sum(int(r.get("connections", 0)) for r in replies),
            "paused": any(r.get("paused") for r in replies),
            "maintenance": any(r.get("maintenance") for r in replies),
            "workers": len(replies)}


def merge_drain(replies: Sequence[Reply]) -> dict[str, Any]:
    """Drained only when every worker drained; the requests still in flight are summed."""
    return {"drained": all(r.get("drained") for r in replies),
            "inflight": sum(int(r.get("inflight", 0)) for r in replies)}


def _pairs(raw: Any) -> list[tuple[int, int]]:
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(int(i), int(n)) for i, n in items]


def _add_window(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Add the counts of one window document to another (rates and quantiles: ``_finish``)."""
    n_mine, n_other = _count(into), _count(other)
    # The latency sum is not sent: the merged mean is the count-weighted mean of the two.
    total = (into.get("mean") or 0.0) * n_mine + (other.get("mean") or 0.0) * n_other
    into["mean"] = total / (n_mine + n_other) if n_mine + n_other else None
    into["requests"] = n_mine + n_other
    status, theirs = dict(into.get("status") or {}), other.get("status") or {}
    for key in _STATUS_KEYS:
        status[key] = int(status.get(key, 0)) + int(theirs.get(key, 0))
    into["status"] = status
    for key in (*_SUMMED, "errors"):
        into[key] = int(into.get(key, 0)) + int(other.get(key, 0))
    hist = Histogram.from_pairs(into.get("histogram") or [])
    hist.merge(Histogram.from_pairs(other.get("histogram") or []))
    into["histogram"] = hist.pairs()


def _count(doc: Mapping[str, Any]) -> int:
    return int(doc.get("requests", 0))


def _finish(doc: dict[str, Any], window_s: float) -> None:
    n = _count(doc)
    hist = Histogram.from_pairs(doc.get("histogram") or [])
    doc["error_rate"] = (int(doc.get("errors", 0)) / n) if n else 0.0
    doc["rate"] = n / window_s if window_s > 0 else 0.0
    doc["p50"], doc["p95"], doc["p99"] = hist.quantile(0.50), hist.quantile(0.95), hist.quantile(0.99)
