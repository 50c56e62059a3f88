"""Canary judgement: the canary against the stable release over the same window.

Two checks, each one-sided (only "canary worse" can fail it):

- errors — pooled two-proportion z-test on errors / requests (Fisher's exact test instead when an
  expected count is under 5, where the z-test would overstate a handful of errors). Fails when p < 1 − confidence AND the
  observed difference exceeds ``max(error_tolerance, error_tolerance_relative × stable's rate)``.
- latency — Mann–Whitney U on the two latency histograms (bins as ordered values). Fails when
  p < 1 − confidence AND the canary's median exceeds stable's by more than
  ``max(latency_tolerance_min, latency_tolerance × stable's median)``.

Significance alone would fail a canary 0.1 ms slower at 1,000 rps; the tolerance alone would fail a
canary on one unlucky error among 30 requests: both must agree. Either side with fewer than
``min_samples`` observations makes the check inconclusive, and the verdict says so with the counts —
never a silent pass. Verdict: fail if any check fails, else inconclusive if any is, else pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shipyard.engine.analysis.measurements import BucketBounds, Sample, Window, check_layout, rollup
from shipyard.engine.analysis.stats import mann_whitney_binned, proportion_test
from shipyard.primitives.metrics import quantile
from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.rollout import CanarySpec

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class JudgementSettings:
    """Defaults and their reasoning: docs/analysis.md."""

    min_samples: int = 100
    confidence: float = 0.9999
    error_tolerance: float = 0.01
    error_tolerance_relative: float = 0.5
    latency_tolerance: float = 0.2
    latency_tolerance_min: float = 0.010

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @classmethod
    def from_spec(cls, spec: CanarySpec | None) -> JudgementSettings:
        if spec is None:
            return cls()
        return cls(
            min_samples=spec.min_samples,
            confidence=spec.confidence,
            error_tolerance=spec.error_tolerance,
            error_tolerance_relative=spec.error_tolerance_relative,
            latency_tolerance=spec.latency_tolerance,
            latency_tolerance_min=spec.latency_tolerance_min,
        )


@dataclass(frozen=True)
class JudgementCheck:
    name: Literal["errors", "latency"]
    outcome: Outcome
    reason: str
    canary_n: int
    stable_n: int
    canary_value: float | None  # error rate, or median latency (s)
    stable_value: float | None
    difference: float | None  # canary − stable
    tolerance: float | None
    p_value: float | None
    method: str | None = None  # the test that gave p_value

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    checks: tuple[JudgementCheck, ...]
    start: int  # the window judged: [start, end)
    end: int
    canary: str
    stable: str

    @property
    def reason(self) -> str:
        picked = [c for c in self.checks if c.outcome == self.outcome] or list(self.checks)
        return "; ".join(c.reason for c in picked)

    def to_json(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "window": [self.start, self.end],
            "canary": self.canary,
            "stable": self.stable,
            "checks": [c.to_json() for c in self.checks],
        }


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


def _ms(v: float) -> str:
    return f"{v * 1000:.1f}ms"


def check_errors(canary: Window, stable: Window, s: JudgementSettings) -> JudgementCheck:
    nc, ns = canary.requests, stable.requests
    xc, xs = canary.errors, stable.errors
    if nc < s.min_samples or ns < s.min_samples:
        return JudgementCheck(
            "errors", "inconclusive",
            f"too little traffic to judge errors: canary {nc} requests, stable {ns} "
            f"(need {s.min_samples} each)",
            nc, ns, xc / nc if nc else None, xs / ns if ns else None, None, None, None,
        )
    rc, rs = xc / nc, xs / ns
    diff = rc - rs
    tol = max(s.error_tolerance, s.error_tolerance_relative * rs)
    test = proportion_test(xc, nc, xs, ns)
    observed = f"canary {_pct(rc)} ({xc}/{nc}) vs stable {_pct(rs)} ({xs}/{ns})"
    if test.p_value < s.alpha and diff > tol:
        outcome: Outcome = "fail"
        reason = (f"error rate {observed}: +{_pct(diff)} > tolerance {_pct(tol)}, "
                  f"p={test.p_value:.2g} ({test.method})")
    else:
        outcome = "pass"
        reason = (f"error rate {observed}: not worse beyond tolerance {_pct(tol)} "
                  f"(p={test.p_value:.2g}, {test.method})")
    return JudgementCheck("errors", outcome, reason, nc, ns, rc, rs, diff, tol, test.p_value, test.method)


def check_latency(canary: Window, stable: Window, s: JudgementSettings) -> JudgementCheck:
    hc, hs = canary.histogram, stable.histogram
    nc, ns = sum(hc.values()), sum(hs.values())
    mc, ms = quantile(hc, 0.5), quantile(hs, 0.5)
    if nc < s.min_samples or ns < s.min_samples or mc is None or ms is None:
        return JudgementCheck(
            "latency", "inconclusive",
            f"too little traffic to judge latency: canary {nc} responses, stable {ns} "
            f"(need {s.min_samples} each)",
            nc, ns, mc, ms, None, None, None,
        )
    diff = mc - ms
    tol = max(s.latency_tolerance_min, s.latency_tolerance * ms)
    test = mann_whitney_binned(hc, hs)
    observed = f"median canary {_ms(mc)} vs stable {_ms(ms)}"
    if test.p_value < s.alpha and diff > tol:
        outcome: Outcome = "fail"
        reason = f"latency {observed}: +{_ms(diff)} > tolerance {_ms(tol)}, p={test.p_value:.2g}"
    else:
        outcome = "pass"
        reason = f"latency {observed}: not slower beyond tolerance {_ms(tol)} (p={test.p_value:.2g})"
    return JudgementCheck("latency", outcome, reason, nc, ns, mc, ms, diff, tol, test.p_value, "Mann-Whitney U")


def judge(
    canary: Window,
    stable: Window,
    bounds: BucketBounds | None = None,
    settings: JudgementSettings | None = None,
    *,
    canary_release: str = "canary",
    stable_release: str = "stable",
) -> Verdict:
    """``bounds``: the router's bucket layout or None (see ``measurements.check_layout``)."""
    check_layout(bounds)
    s = settings or JudgementSettings()
    checks = (check_errors(canary, stable, s), check_latency(canary, stable, s))
    outcomes = {c.outcome for c in checks}
    outcome: Outcome = "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    return Verdict(outcome, checks, canary.start, canary.end, canary_release, stable_release)


def judge_samples(
    samples: Iterable[Sample],
    canary: str,
    stable: str,
    start: int,
    end: int,
    bounds: BucketBounds | None = None,
    settings: JudgementSettings | None = None,
) -> Verdict:
    """Judge ``canary`` against ``stable`` over ``[start, end)`` from mixed release/instance samples."""
    rolled = rollup(s for s in samples if s.release in (canary, stable))
    wc = Window.of((s for s in rolled if s.release == canary), start, end)
    ws = Window.of((s for s in rolled if s.release == stable), start, end)
    return judge(wc, ws, bounds, settings, canary_release=canary, stable_release=stable)


def describe_settings(s: JudgementSettings) -> str:
    """One line for ``--plan``."""
    return (
        f"judge canary vs stable: errors (z-test) and latency (Mann-Whitney U) at "
        f"{s.confidence * 100:g}% confidence, at least {s.min_samples} requests each; "
        f"worse means errors above stable's by more than {s.error_tolerance * 100:g} percentage points or "
        f"{s.error_tolerance_relative * 100:g}% of stable's rate, median latency by more than "
        f"{s.latency_tolerance * 100:g}% or {format_duration(s.latency_tolerance_min)} (whichever is larger)"
    )
