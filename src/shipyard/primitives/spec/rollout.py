"""Canary and automatic-rollback settings (owned by the canary/analysis work).

Two tables of an environment:

    canary = { steps = [10, 50, 100], step_duration = "20s" }

    [environments.prod.rollback]
    error_rate = { above = "5%", for = "5m" }
    p95 = { above = "2s", for = "3m" }
    cpu = { above = "90%", for = "5m" }
    memory = { above = "95%", for = "3m" }
    health_failures = 3

The meaning of every setting (and the reasoning behind the defaults) is in docs/analysis.md.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from shipyard.primitives.spec.base import MAX_FLOAT, MAX_TABLE, Duration, Percent, SpecModel
from shipyard.primitives.spec.durations import parse_duration, parse_percent

# A `for` left out means one minute: long enough not to fire on a blip, short enough to matter.
DEFAULT_FOR = 60.0
MAX_CPU = 1024.0  # cores
MAX_RATE = 1e9  # requests per second
# Canary steps as written; the expansion adds at most a bake per weight, so plans stay small.
MAX_STEPS = 100


def _parse_cpu(value: str | int | float) -> float:
    """CPU is in cores: ``"90%"`` → 0.9 of one core; ``"250%"`` (2.5 cores) is allowed, unlike other
    percentages."""
    try:
        frac = parse_percent(value, upper=None)
    except ValueError:
        raise ValueError(f"expected a CPU percentage like '90%', got {value!r}") from None
    if not frac > 0.0:
        raise ValueError(f"CPU threshold must be above 0%, got {value!r}")
    if frac > MAX_CPU:
        raise ValueError(f"CPU threshold must be at most {MAX_CPU * 100:g}% ({MAX_CPU:g} cores), got {value!r}")
    return frac


def _parse_rate(value: str | int | float) -> float:
    """Requests per second: ``5``, ``0.5`` or ``"5/s"``, ``"300/m"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a request rate like 5 or '300/m', got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        text = value.strip().replace(" ", "")
        per = {"/s": 1.0, "/m": 60.0, "/min": 60.0, "/h": 3600.0}
        divisor = 1.0
        for suffix, seconds in per.items():
            if text.endswith(suffix):
                text, divisor = text[: -len(suffix)], seconds
                break
        try:
            rate = float(text) / divisor
        except ValueError:
            raise ValueError(f"expected a request rate like 5 or '300/m', got {value!r}") from None
    if rate < 0:
        raise ValueError(f"request rate must not be negative, got {value!r}")
    if not math.isfinite(rate) or rate > MAX_RATE:
        raise ValueError(f"request rate must be at most {MAX_RATE:g}/s, got {value!r}")
    return rate


def _positive_duration(value: str | int | float) -> float:
    seconds = parse_duration(value, upper=3600.0)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration like '500ms' or '2s', got {value!r}")
    return seconds


Cpu = Annotated[float, BeforeValidator(_parse_cpu)]
Rate = Annotated[float, BeforeValidator(_parse_rate)]
Latency = Annotated[float, BeforeValidator(_positive_duration)]


# ---------------------------------------------------------------------------------------------------------
# Rollback triggers


class _Trigger(SpecModel):
    for_: Duration = Field(default=DEFAULT_FOR, alias="for")


class ErrorRateAbove(_Trigger):
    """Share of requests answered 5xx or failed upstream (connection refused/reset, timeout)."""

    above: Percent


class LatencyAbove(_Trigger):
    above: Latency


class RequestRateBelow(_Trigger):
    below: Rate


class CpuAbove(_Trigger):
    """Per instance, in cores (``"90%"`` = 0.9 of one core)."""

    above: Cpu


class MemoryAbove(_Trigger):
    """Per instance: resident memory as a share of the instance's memory limit, or of the machine's
    total memory when it has none."""

    above: Percent

    @field_validator("above")
    @classmethod
    def _not_zero(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("memory threshold must be above 0%")
        return v


class PrometheusTrigger(_Trigger):
    """A PromQL instant query against a user's Prometheus, evaluated periodically."""

    url: str
    query: str
    above: float | None = Field(default=None, ge=-MAX_FLOAT, le=MAX_FLOAT)
    below: float | None = Field(default=None, ge=-MAX_FLOAT, le=MAX_FLOAT)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("query")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _one_direction(self) -> PrometheusTrigger:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        return self


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class RollbackSpec(SpecModel):
    """Hard limits, applied during a rollout and during the post-deploy watch."""

    error_rate: ErrorRateAbove | None = None
    p50: LatencyAbove | None = None
    p95: LatencyAbove | None = None
    p99: LatencyAbove | None = None
    request_rate: RequestRateBelow | None = None
    cpu: CpuAbove | None = None
    memory: MemoryAbove | None = None
    health_failures: int | None = Field(default=None, ge=1, le=1000)
    # One query table, or a list of them.
    prometheus: Annotated[list[PrometheusTrigger], BeforeValidator(_one_or_many), Field(max_length=100)] = []


# ---------------------------------------------------------------------------------------------------------
# Canary steps


class WeightStep(SpecModel):
    weight: int = Field(ge=1, le=100)


class ManualGate(SpecModel):
    """``pause = {}``: wait for ``shipyard promote``."""


class PauseStep(SpecModel):
    # A duration, or an empty table for a manual gate (None here).
    pause: float | None

    @field_validator("pause", mode="before")
    @classmethod
    def _pause(cls, v: Any) -> float | None:
        if isinstance(v, dict):
            if not v:
                return None
            if set(v) == {"duration"}:
                v = v["duration"]
            else:
                raise ValueError("expected a duration like '1m', {} for a manual gate, or { duration = '1m' }")
        seconds = parse_duration(v)
        if seconds <= 0:
            raise ValueError("a pause must be positive; use {} for a manual gate")
        return seconds

    @property
    def manual(self) -> bool:
        return self.pause is None


class AnalysisStep(SpecModel):
    analysis: str = Field(min_length=1)


CanaryStepSpec = WeightStep | PauseStep | AnalysisStep


def _step_tag(value: Any) -> str | None:
    # The tag shows in error locations (steps.1.pause.pause: …), so it is the step's key.
    if isinstance(value, int) and not isinstance(value, bool):
        return "number"
    if isinstance(value, WeightStep | PauseStep | AnalysisStep):
        return next(iter(type(value).model_fields))
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in ("weight", "pause", "analysis") else None
    return None


_Step = Annotated[
    Annotated[int, Tag("number")]
    | Annotated[WeightStep, Tag("weight")]
    | Annotated[PauseStep, Tag("pause")]
    | Annotated[AnalysisStep, Tag("analysis")],
    Discriminator(
        _step_tag,
        custom_error_type="canary_step",
        custom_error_message="expected a weight (10), { weight = 10 }, { pause = '1m' }, "
        "{ pause = {} } or { analysis = 'name' }",
    ),
]


class AnalysisSpec(RollbackSpec):
    """A named analysis (``{ analysis = "name" }`` step): the canary judgement plus these conditions,
    applied to the canary for ``duration`` (``step_duration`` when left out)."""

    duration: Duration | None = None


def _steps_form(value: Any) -> Any:
    """A list of bare weights is the short form; otherwise every item is a step (a bare number in a
    mixed list is a weight step). The short form is tagged so the expansion can add the bakes."""
    if not isinstance(value, list):
        return value
    if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return value
    return [{"weight": v} if isinstance(v, int) and not isinstance(v, bool) else v for v in value]


class CanarySpec(SpecModel):
    """Canary rollout: steps, bake time and the statistical judgement's settings."""

    steps: Annotated[list[_Step], BeforeValidator(_steps_form), Field(max_length=MAX_STEPS)] = [10, 50, 100]
    # How long each weight of the short form is baked (and judged) before the next.
    step_duration: Duration = 20.0
    # Judgement: requests per release (canary and stable) before either test may speak.
    min_samples: int = Field(default=100, ge=10, le=1_000_000_000)
    # One-sided confidence of both tests (p-value below 1 - confidence counts as evidence).
    confidence: Percent = 0.9999
    # Canary error rate must exceed stable's by more than max(error_tolerance, rel × stable's rate).
    error_tolerance: Percent = 0.01
    error_tolerance_relative: float = Field(default=0.5, ge=0.0, le=100.0)
    # Canary median latency must exceed stable's by more than max(latency_tolerance_min, rel × median).
    latency_tolerance: Percent = 0.2
    latency_tolerance_min: Duration = 0.010
    # How long past a step's duration the verdict may stay inconclusive before pausing for a human.
    inconclusive_limit: Duration = 120.0
    # Restarts (crashes, failed liveness) of canary instances tolerated while it is analysed: a release that
    # crashes under a tenth of the traffic should not get all of it.
    max_restarts: int = Field(default=0, ge=0, le=1000)
    analysis: Annotated[dict[str, AnalysisSpec], Field(max_length=MAX_TABLE)] = {}

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[int | CanaryStepSpec]) -> list[int | CanaryStepSpec]:
        if not steps:
            raise ValueError("needs at least one step, e.g. [10, 50, 100]")
        for w in steps:
            if isinstance(w, int) and not 1 <= w <= 100:
                raise ValueError(f"weights must be between 1 and 100 (percent), got {w}")
        if not any(isinstance(s, int | WeightStep) for s in steps):
            raise ValueError("needs at least one weight step, e.g. { weight = 10 }")
        for s in steps:
            if isinstance(s, int | WeightStep):
                break
            if isinstance(s, AnalysisStep) or (isinstance(s, PauseStep) and not s.manual):
                raise ValueError("a timed pause or an analysis before the first weight step has no canary "
                                 "traffic to judge (a manual gate { pause = {} } is fine there)")
        return steps

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: float) -> float:
        if not 0.5 <= v < 1.0:
            raise ValueError("confidence must be at least 50% and below 100%")
        return v

    @model_validator(mode="after")
    def _known_analyses(self) -> CanarySpec:
        for s in self.steps:
            if isinstance(s, AnalysisStep) and s.analysis not in self.analysis and s.analysis != "canary":
                known = ", ".join(["canary", *sorted(self.analysis)])
                raise ValueError(f"steps: unknown analysis {s.analysis!r} (known: {known})")
        return self

    @property
    def short_form(self) -> bool:
        return all(isinstance(s, int) for s in self.steps)
