"""The verify gate: the one entry the ``verify`` command and deploy steps use.

``await verify_gate(target, spec, env=..., state_dir=...)`` runs the verification (the built-in open-model
generator, or a Locust file), writes the HTML report and returns a ``GateOutcome`` — a ``(result, report)``
pair that also says what to do with it: ``require_go()`` raises ``NoGo`` (exit 99) naming each failing
threshold with its observed value, and ``summary()`` is the short record a deploy step keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from shipyard.engine.verify.generator import Progress
from shipyard.engine.verify.locust import run_locust
from shipyard.engine.verify.report import report_path, write_report
from shipyard.engine.verify.result import VerifyResult
from shipyard.engine.verify.runner import run_verify
from shipyard.errors import NoGo
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec.verify import VerifySpec

__all__ = ["GateOutcome", "verify_gate"]


def _num(value: float, digits: int = 3) -> float | None:
    return None if math.isnan(value) else round(value, digits)


class GateOutcome(NamedTuple):
    """A verification's result and where its report was written (unpacks as ``result, report``)."""

    result: VerifyResult
    report: Path

    @property
    def go(self) -> bool:
        return self.result.go

    def failures(self) -> list[str]:
        """``metric expr (observed value)`` for each threshold that failed."""
        return [f"{t.metric} {t.expr} (observed {t.observed_text()})" for t in self.result.failing()]

    def require_go(self) -> None:
        """Return on go; on no-go raise ``NoGo`` (exit 99) with every failing threshold and its observed value."""
        if self.result.go:
            return
        r = self.result
        raise NoGo(f"verify no-go against {r.target}: " + "; ".join(self.failures())
                   + f" — {r.requests} requests at {r.rate_achieved:.1f}/s (asked {r.rate_requested:g}/s), "
                   f"failed {r.failed_rate:.2%}; report: {self.report}")

    def summary(self) -> dict[str, Any]:
        """The short, JSON-ready record of a deploy step: verdict, rate, latency, failures, report."""
        r = self.result
        lat = r.latency
        return {
            "go": r.go,
            "rate_requested": r.rate_requested,
            "rate_achieved": round(r.rate_achieved, 3),
            "requests": r.requests,
            "failed_rate": round(r.failed_rate, 6),
            "latency_ms": {"p50": _num(lat.p50), "p90": _num(lat.p90), "p95": _num(lat.p95),
                           "p99": _num(lat.p99), "max": _num(lat.max)},
            "failed_thresholds": self.failures(),
            "warnings": list(r.warnings),
            "report": str(self.report),
        }


async def verify_gate(
    target: str,
    spec: VerifySpec,
    *,
    env: str,
    state_dir: Path,
    project_dir: Path | None = None,
    rate: float | None = None,
    duration: float | None = None,
    report: Path | None = None,
    locustfile: Path | None = None,
    users: int = 10,
    on_progress: Callable[[Progress], None] | None = None,
    on_output: Callable[[str], None] | None = None,
    clock: Clock | None = None,
) -> GateOutcome:
    """Verify ``target`` (``http://host:port``) as ``spec`` says and write the report.

    ``rate``/``duration`` override the spec's. The report goes to ``report`` or, by default,
    ``state_dir/reports/verify-<env>-<UTC time>.html``. With ``locustfile`` the run is Locust's
    (``users`` users; ``on_output`` gets its output lines); otherwise the built-in generator's
    (``on_progress`` about once a second). A run that cannot happen (bad target, nothing listening) raises
    a ``ShipyardError``; a verdict never raises here — call ``require_go()`` on the outcome.
    """
    if locustfile is not None:
        result = await run_locust(locustfile, target, spec, users=users, duration=duration, rate=rate,
                                  on_output=on_output, clock=clock)
    else:
        result = await run_verify(target, spec, rate=rate, duration=duration, on_progress=on_progress,
                                  project_dir=project_dir, clock=clock)
    path = write_report(result, report or report_path(state_dir, env, result.started_at), env=env)
    return GateOutcome(result, path)
