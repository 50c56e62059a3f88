"""A seeded, pure simulation of the canary judgement with the default settings.

    python tests/analysis/canary_sim.py      # prints the figures quoted in docs/analysis.md

Traffic per second is Poisson; errors binomial; latency lognormal, binned into a router-like log-linear
histogram. The judgement runs every second over the current step's window, exactly as the executor is
meant to drive ``decide``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from analysis_helpers import Traffic

from shipyard.engine.analysis.judgement import JudgementSettings, judge
from shipyard.engine.analysis.measurements import Sample, Window
from shipyard.engine.rollout.canary import decide, expand
from shipyard.primitives.spec.rollout import CanarySpec


def detection_seconds(kind: str, seed: int, total_rps: int = 1000, weight: int = 10,
                      limit: int = 60, settings: JudgementSettings | None = None) -> int | None:
    """Seconds of canary traffic until the judgement FAILS a bad canary (None: not within `limit`).

    kind: "errors" (canary 5 % errors), "latency" (canary +300 ms), "crashloop" (one of 3 canary
    instances refuses every connection: a third of its requests fail fast).
    """
    rng = np.random.default_rng(seed)
    canary_rps = total_rps * weight // 100
    base_err = 0.001
    canary_err = {"errors": 0.05, "latency": base_err, "crashloop": 1 / 3}[kind]
    canary = Traffic(rng, "canary", canary_rps, canary_err, shift=0.300 if kind == "latency" else 0.0)
    stable = Traffic(rng, "stable", total_rps - canary_rps, base_err)
    cs: list[Sample] = []
    ss: list[Sample] = []
    for t in range(limit):
        cs.append(canary.second(t))
        ss.append(stable.second(t))
        v = judge(Window.of(cs, 0, t + 1), Window.of(ss, 0, t + 1), settings=settings)
        if v.outcome == "fail":
            return t + 1
    return None


@dataclass(frozen=True)
class RolloutResult:
    outcome: str  # "promote" | "rollback" | "pause" | "timeout"
    seconds: int
    reason: str


def healthy_rollout(seed: int, total_rps: int = 200, spec: CanarySpec | None = None) -> RolloutResult:
    """A healthy canary (same error rate and latency as stable, random per run) through the default
    steps; returns how it ended."""
    spec = spec or CanarySpec()
    rng = np.random.default_rng(10_000 + seed)
    err = float(rng.uniform(0.0, 0.01))
    median = float(rng.uniform(0.005, 0.050))
    sigma = float(rng.uniform(0.3, 0.8))
    settings = JudgementSettings.from_spec(spec)
    steps = expand(spec)
    t = 0
    i = 0
    step_start = 0
    weight = 0
    cs: list[Sample] = []
    ss: list[Sample] = []
    while t < 600:
        step = steps[i]
        if step.kind == "weight":
            weight = step.weight
        cr = total_rps * weight // 100
        canary = Traffic(rng, "canary", cr, err, median, sigma)
        stable = Traffic(rng, "stable", total_rps - cr, err, median, sigma)
        cs.append(canary.second(t))
        ss.append(stable.second(t))
        t += 1
        v = judge(Window.of(cs, step_start, t), Window.of(ss, step_start, t), settings=settings)
        d = decide(step, elapsed=t - step_start, verdict=v, inconclusive_limit=spec.inconclusive_limit)
        if d.action in ("rollback", "pause", "promote"):
            return RolloutResult(d.action, t, d.reason)
        if d.action == "continue":
            i += 1
            step_start = t
    return RolloutResult("timeout", t, "")


def figures(runs: int = 20) -> dict[str, object]:
    out: dict[str, object] = {}
    for kind in ("errors", "latency", "crashloop"):
        secs = [detection_seconds(kind, seed) for seed in range(runs)]
        got = [s for s in secs if s is not None]
        out[kind] = {"missed": len(secs) - len(got), "median_s": statistics.median(got) if got else None,
                     "max_s": max(got) if got else None}
        secs200 = [detection_seconds(kind, seed, total_rps=200) for seed in range(runs)]
        got200 = [s for s in secs200 if s is not None]
        out[kind + "@200rps"] = {"missed": len(secs200) - len(got200),
                                 "median_s": statistics.median(got200) if got200 else None,
                                 "max_s": max(got200) if got200 else None}
    results = [healthy_rollout(seed) for seed in range(runs)]
    out["healthy@200rps"] = {
        "promoted": sum(r.outcome == "promote" for r in results),
        "false_fails": sum(r.outcome == "rollback" for r in results),
        "paused": sum(r.outcome == "pause" for r in results),
        "seconds": statistics.median(r.seconds for r in results),
    }
    return out


if __name__ == "__main__":
    for name, fig in figures().items():
        print(f"{name:>20}: {fig}")
