"""Run a team's existing Locust scenario headless and judge its results with the same thresholds.

Locust runs in a subprocess (``python -m locust ... --csv PREFIX --json-file PREFIX``). Its final stats
(``PREFIX.json``: per endpoint, with the response-time histogram) give the totals and any percentile;
the stats CSV gives the per-second series. The CSV alone is a fallback for Locust versions without
``--json-file``: Locust rewrites it once a second and not at exit, so it misses the last second, and it
holds only fixed percentiles. Locust is a closed model (users wait for each response), so its latencies
are from the sent time and its rate is whatever the users achieve.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from shipyard.engine.verify.result import LatencySummary, ScenarioResult, SecondPoint, VerifyResult
from shipyard.engine.verify.runner import parse_target
from shipyard.engine.verify.thresholds import Observed, ThresholdExpr, evaluate
from shipyard.errors import BadInput, ShipyardError
from shipyard.primitives.clock import Clock, SystemClock
from shipyard.primitives.spec.verify import VerifySpec

CLOSED_MODEL = ("Locust is a closed model: latencies are from the sent time, so a stalling server can hide "
                "(coordinated omission)")
# The percentile columns of Locust's stats CSV.
PERCENTILES = (50.0, 66.0, 75.0, 80.0, 90.0, 95.0, 98.0, 99.0, 99.9, 99.99, 100.0)


def locust_installed() -> bool:
    return importlib.util.find_spec("locust") is not None


def check_thresholds(thresholds: list[ThresholdExpr]) -> None:
    """Locust never drops a request (its users just slow down); refuse a threshold it cannot answer."""
    for t in thresholds:
        if t.metric == "dropped_iterations":
            raise BadInput(f"thresholds.dropped_iterations: {t.expr!r} has no meaning for Locust (closed model)")


def locust_command(locustfile: Path, target: str, *, users: int, spawn_rate: float, duration: float,
                   csv_prefix: Path) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users),
            "-r", f"{spawn_rate:g}", "-t", f"{max(1, math.ceil(duration))}s", "--host", target,
            "--csv", str(csv_prefix), "--json-file", str(csv_prefix), "--only-summary", "--loglevel", "WARNING",
            "--exit-code-on-error", "0"]


async def run_locust(locustfile: Path, target: str, spec: VerifySpec, *, users: int = 10,
                     duration: float | None = None, rate: float | None = None,
                     on_output: Callable[[str], None] | None = None, clock: Clock | None = None) -> VerifyResult:
    """Run ``locustfile`` against ``target`` with ``users`` users for ``duration`` (default: the spec's)."""
    if not locust_installed():
        raise BadInput("--locustfile needs Locust, which is not installed: pip install locust")
    if not locustfile.is_file():
        raise BadInput(f"locustfile {locustfile} does not exist")
    if users < 1:
        raise BadInput(f"users must be at least 1, got {users}")
    parse_target(target)
    thresholds = spec.thresholds.parsed()
    check_thresholds(thresholds)
    clock = clock or SystemClock()
    seconds = duration or spec.duration
    spawn = users / spec.ramp if spec.ramp else float(users)
    started_at = clock.time()
    with tempfile.TemporaryDirectory(prefix="shipyard-locust-") as tmp:
        prefix = Path(tmp) / "run"
        cmd = locust_command(locustfile, target, users=users, spawn_rate=spawn, duration=seconds, csv_prefix=prefix)
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        tail: list[str] = []
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(seconds + 120):
                async for raw in proc.stdout:
                    line = raw.decode(errors="replace").rstrip()
                    tail = (tail + [line])[-20:]
                    if on_output is not None:
                        on_output(line)
                await proc.wait()
        except BaseException:
            proc.kill()
            await proc.wait()
            raise
        final, history = Path(f"{prefix}.json"), Path(f"{prefix}_stats_history.csv")
        stats_file = Path(f"{prefix}_stats.csv")
        read = result_from_json if final.exists() else result_from_csv if stats_file.exists() else None
        if read is not None:
            return read(final if final.exists() else stats_file, history, target=target, spec=spec,
                        thresholds=thresholds, duration=seconds, rate_requested=rate or spec.rate,
                        started_at=started_at)
        raise ShipyardError(f"locust exited with {proc.returncode} and wrote no stats:\n" + "\n".join(tail))


def _f(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.nan


def result_from_csv(stats_file: Path, history_file: Path, *, target: str, spec: VerifySpec,
                    thresholds: list[ThresholdExpr], duration: float, rate_requested: float,
                    started_at: float) -> VerifyResult:
    """Map Locust's ``_stats.csv`` (and ``_stats_history.csv`` for the series) into a VerifyResult."""
    with stats_file.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    total = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if total is None:
        raise ShipyardError(f"{stats_file.name}: no Aggregated row (did any request run?)")
    pct = {p: _f(total[f"{p:g}%"]) for p in PERCENTILES}
    requests = int(total["Request Count"])
    failed = int(total["Failure Count"])

    def quantile_ms(q: float) -> float:
        return pct.get(round(q * 100, 2), math.nan)

    observed = Observed(seconds=duration, requests=requests, failed=failed, dropped=0,
                        avg_ms=_f(total["Average Response Time"]), min_ms=_f(total["Min Response Time"]),
                        max_ms=_f(total["Max Response Time"]), quantile_ms=quantile_ms)
    results = tuple(evaluate(thresholds, observed))
    latency = LatencySummary(pct[50.0], pct[90.0], pct[95.0], pct[99.0], observed.max_ms, observed.min_ms,
                             observed.avg_ms)
    scenarios = tuple(ScenarioResult(f"{r['Type']} {r['Name']}".strip(), 0.0, int(r["Request Count"]),
                                     int(r["Failure Count"])) for r in rows if r.get("Name") != "Aggregated")
    return VerifyResult(
        go=all(t.ok for t in results), target=target, source="locust", started_at=started_at,
        duration=duration, ramp=spec.ramp, rate_requested=rate_requested,
        rate_achieved=_f(total["Requests/s"]), requests=requests, failed=failed,
        latency=latency, service=None, thresholds=results, series=_series(history_file), histogram=(),
        scenarios=scenarios, statuses=(), errors=(("failed", failed),) if failed else (), generator=None,
        warnings=(CLOSED_MODEL, "from Locust's stats CSV, which misses the run's last second"),
    )


def result_from_json(final_file: Path, history_file: Path, *, target: str, spec: VerifySpec,
                     thresholds: list[ThresholdExpr], duration: float, rate_requested: float,
                     started_at: float) -> VerifyResult:
    """Map Locust's final stats (``--json-file``: a list of per-endpoint entries) into a VerifyResult."""
    try:
        entries = json.loads(final_file.read_text())
        times: dict[float, int] = {}
        for e in entries:
            for ms, n in e["response_times"].items():
                times[float(ms)] = times.get(float(ms), 0) + int(n)
        requests = sum(int(e["num_requests"]) for e in entries)
        failed = sum(int(e["num_failures"]) for e in entries)
        total_ms = sum(float(e["total_response_time"]) for e in entries)
        span = (max(float(e["last_request_timestamp"] or 0) for e in entries)
                - min(float(e["start_time"]) for e in entries)) if entries else 0.0
        mins = [float(e["min_response_time"]) for e in entries if e["min_response_time"] is not None]
    except (ValueError, KeyError, TypeError) as exc:
        raise ShipyardError(f"cannot read Locust's stats {final_file.name}: {exc}") from exc
    ordered = sorted(times.items())

    def quantile_ms(q: float) -> float:
        # Locust keeps response times rounded (1 ms under 100 ms, 10 ms under 1 s, then 100 ms).
        rank, seen = max(1, math.ceil(q * requests)), 0
        for ms, n in ordered:
            seen += n
            if seen >= rank:
                return ms
        return math.nan

    # Locust's own Requests/s: over the time between the first start and the last request.
    observed = Observed(seconds=span if span > 0 else duration, requests=requests, failed=failed, dropped=0,
                        avg_ms=total_ms / requests if requests else math.nan, min_ms=min(mins, default=math.nan),
                        max_ms=max((float(e["max_response_time"]) for e in entries), default=math.nan),
                        quantile_ms=quantile_ms)
    results = tuple(evaluate(thresholds, observed))
    q = quantile_ms
    latency = LatencySummary(q(0.5), q(0.9), q(0.95), q(0.99), observed.max_ms, observed.min_ms, observed.avg_ms)
    scenarios = tuple(ScenarioResult(f"{e['method'] or ''} {e['name']}".strip(), 0.0, int(e["num_requests"]),
                                     int(e["num_failures"])) for e in entries)
    return VerifyResult(
        go=all(t.ok for t in results), target=target, source="locust", started_at=started_at,
        duration=duration, ramp=spec.ramp, rate_requested=rate_requested,
        rate_achieved=requests / observed.seconds, requests=requests, failed=failed,
        latency=latency, service=None, thresholds=results, series=_series(history_file),
        histogram=tuple((ms, ms + 1, n) for ms, n in ordered), scenarios=scenarios, statuses=(),
        errors=(("failed", failed),) if failed else (), generator=None, warnings=(CLOSED_MODEL,),
    )


def _series(history_file: Path) -> tuple[SecondPoint, ...]:
    if not history_file.exists():
        return ()
    with history_file.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("Name") == "Aggregated" and r.get("50%") != "N/A"]
    if not rows:
        return ()
    t0 = int(rows[0]["Timestamp"])
    seen: dict[int, SecondPoint] = {}
    for r in rows:
        t = int(r["Timestamp"]) - t0
        seen[t] = SecondPoint(t, round(_f(r["Requests/s"])), round(_f(r["Failures/s"])), _f(r["50%"]),
                              _f(r["95%"]), _f(r["99%"]), _f(r["100%"]), False)
    return tuple(seen[t] for t in sorted(seen))
