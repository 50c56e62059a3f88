"""Run a verification: the generator on its own thread and uvloop loop, then thresholds and a verdict.

The generator gets a loop of its own so that whatever else the caller's loop does (the control plane's
API, the deploy engine) cannot delay its sends, and so its CPU use can be measured per thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from shipyard.engine.verify.generator import Generator, GeneratorStats, Progress
from shipyard.engine.verify.recorder import LATE_AFTER, LoadRecorder
from shipyard.engine.verify.result import (
    GeneratorSummary,
    LatencySummary,
    ScenarioResult,
    SecondPoint,
    VerifyResult,
    ms,
)
from shipyard.engine.verify.scenarios import load_scenarios, pick_cycle, prepare
from shipyard.engine.verify.schedule import Schedule
from shipyard.engine.verify.thresholds import Observed, evaluate
from shipyard.errors import BadInput
from shipyard.primitives.clock import Clock, SystemClock
from shipyard.primitives.spec.verify import VerifySpec

__all__ = ["Progress", "VerifyResult", "run_verify", "parse_target"]

# Above this share of one core the generator itself may be what limits the run.
SATURATED_CPU = 90.0


def parse_target(target: str) -> tuple[str, int]:
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise BadInput(f"verify target must be an http:// URL with a host, got {target!r}")
    if parts.path not in ("", "/"):
        raise BadInput(f"verify target is a base URL without a path, got {target!r} (put paths in scenarios)")
    return parts.hostname, parts.port or 80


async def run_verify(target: str, spec: VerifySpec, *, rate: float | None = None, duration: float | None = None,
                     on_progress: Callable[[Progress], None] | None = None, project_dir: Path | None = None,
                     clock: Clock | None = None) -> VerifyResult:
    """Load ``target`` (``http://127.0.0.1:PORT``) as ``spec`` says and judge it against its thresholds.

    ``rate``/``duration`` override the spec's. ``on_progress`` is called on the caller's loop about once a
    second. Cancelling the call stops the generator and waits for it to close its connections.
    """
    if rate is not None and rate <= 0:
        raise BadInput(f"rate must be greater than 0, got {rate:g}")
    if duration is not None and duration <= 0:
        raise BadInput(f"duration must be greater than 0, got {duration:g}")
    host, port = parse_target(target)
    clock = clock or SystemClock()
    scenarios = load_scenarios(spec, project_dir)
    prepared = prepare(scenarios, f"{host}:{port}")
    schedule = Schedule(rate or spec.rate, duration or spec.duration, spec.ramp)
    thresholds = spec.thresholds.parsed()

    caller = asyncio.get_running_loop()
    progress_cb: Callable[[Progress], None] | None = None
    if on_progress is not None:
        cb = on_progress

        def progress_cb(p: Progress) -> None:
            caller.call_soon_threadsafe(cb, p)

    gen = Generator(host, port, prepared, pick_cycle([p.weight for p in prepared]), schedule,
                    max_conns=spec.max_vus, timeout=spec.timeout, on_tick=progress_cb)
    started_at = clock.time()
    stats = await _run_on_own_loop(gen)

    rec = gen.rec
    observed = _observed(rec, schedule)
    results = tuple(evaluate(thresholds, observed))
    cpu_percent = 100.0 * stats.cpu_s / stats.wall_s if stats.wall_s > 0 else 0.0
    generator = GeneratorSummary(cpu_percent, stats.cpu_s, stats.max_connections, spec.max_vus, rec.late,
                                 rec.dropped, rec.max_lag * 1000)
    return VerifyResult(
        go=all(t.ok for t in results),
        target=target,
        source="shipyard",
        started_at=started_at,
        duration=schedule.duration,
        ramp=schedule.ramp,
        rate_requested=schedule.rate,
        rate_achieved=_achieved(rec, schedule),
        requests=rec.sent,
        failed=rec.failed,
        latency=LatencySummary.of(rec.latency),
        service=LatencySummary.of(rec.service),
        thresholds=results,
        series=_series(rec, schedule),
        histogram=tuple((lo * 1000, hi * 1000, c) for lo, hi, c in rec.latency.buckets()),
        scenarios=tuple(ScenarioResult(p.label, p.weight, n, f) for p, (n, f) in zip(prepared, rec.by_scenario,
                                                                                      strict=True)),
        statuses=tuple(sorted(rec.statuses.items())),
        errors=tuple(sorted(rec.errors.items())),
        generator=generator,
        warnings=tuple(_warnings(rec, schedule, generator, spec)),
    )


async def _run_on_own_loop(gen: Generator) -> GeneratorStats:
    done: concurrent.futures.Future[GeneratorStats] = concurrent.futures.Future()

    def main() -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                done.set_result(runner.run(gen.run()))
        except BaseException as exc:  # handed to the awaiting caller
            done.set_exception(exc)

    thread = threading.Thread(target=main, name="shipyard-verify", daemon=True)
    thread.start()
    try:
        return await asyncio.shield(asyncio.wrap_future(done))
    except asyncio.CancelledError:
        gen.request_stop()
        await asyncio.wrap_future(done)
        raise


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return None
    return uvloop.new_event_loop


def _observed(rec: LoadRecorder, schedule: Schedule) -> Observed:
    h = rec.latency

    def quantile_ms(q: float) -> float:
        return ms(h.quantile(q))

    return Observed(
        seconds=_send_span(rec, schedule),
        requests=rec.sent,
        failed=rec.failed,
        dropped=rec.dropped,
        avg_ms=ms(h.mean),
        min_ms=ms(h.min),
        max_ms=ms(h.max),
        quantile_ms=quantile_ms,
    )


def _achieved(rec: LoadRecorder, schedule: Schedule) -> float:
    """Sent requests per second of the judged part; a generator that fell behind took longer to send them."""
    return rec.sent / _send_span(rec, schedule) if rec.sent else 0.0


def _send_span(rec: LoadRecorder, schedule: Schedule) -> float:
    """Seconds the judged requests took to send: the duration, or longer if the generator fell behind."""
    if rec.sent == 0:
        return schedule.duration
    return max(schedule.duration, rec.last_sent - schedule.ramp + 1.0 / schedule.rate)


def _series(rec: LoadRecorder, schedule: Schedule) -> tuple[SecondPoint, ...]:
    out = []
    for t, sec in enumerate(rec.seconds):
        q = sec.hist.quantile
        out.append(SecondPoint(t, sec.requests, sec.failed, ms(q(0.5)), ms(q(0.95)), ms(q(0.99)), ms(sec.hist.max),
                               t < schedule.ramp))
    return tuple(out)


def _warnings(rec: LoadRecorder, schedule: Schedule, gen: GeneratorSummary, spec: VerifySpec) -> list[str]:
    out = []
    if rec.dropped:
        out.append(f"could not hold the rate: {rec.dropped} requests were dropped after waiting "
                   f"{spec.timeout:g}s for one of {spec.max_vus} connections (max_vus)")
    if rec.sent and rec.late > 0.01 * rec.sent:
        why = (f"the generator used {gen.cpu_percent:.0f}% of a core" if gen.cpu_percent >= SATURATED_CPU
               else f"all {gen.connections} connections were busy" if gen.connections >= spec.max_vus
               else "the generator fell behind")
        out.append(f"could not hold the rate: {rec.late} requests ({rec.late / rec.sent:.1%}) left more than "
                   f"{LATE_AFTER * 1000:.0f} ms after their scheduled time ({why})")
    elif gen.cpu_percent >= SATURATED_CPU:
        out.append(f"the generator used {gen.cpu_percent:.0f}% of a core: it may be the bottleneck")
    achieved = _achieved(rec, schedule)
    if achieved < 0.99 * schedule.rate:
        out.append(f"achieved {achieved:.1f} requests/s of the {schedule.rate:g} asked")
    return out
