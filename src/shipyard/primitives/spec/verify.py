"""Load verification settings: ``[environments.NAME.verify]`` (owned by the verify work).

Thresholds use k6's syntax (``"p(95)<500"``, ``"rate<0.001"``) and are parsed here, at load time, so a
malformed one is a config error naming its key path (``environments.staging.verify.thresholds
.http_req_duration[1]: ...``). The engine (``shipyard.engine.verify.thresholds``) evaluates them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, field_validator, model_validator

from shipyard.primitives.spec.base import MAX_LIST, SpecModel, duration_upto
from shipyard.primitives.spec.durations import DAY

# Which aggregations each metric offers (k6: Trend, Rate and Counter metrics).
METRIC_AGGREGATIONS: dict[str, tuple[str, ...]] = {
    "http_req_duration": ("avg", "min", "med", "max", "p(N)"),  # milliseconds
    "http_req_failed": ("rate",),  # fraction of requests failed (0..1)
    "http_reqs": ("count", "rate"),  # requests sent; rate per second
    "dropped_iterations": ("count", "rate"),  # requests the generator could not send
}
OPERATORS = ("<=", ">=", "==", "!=", "<", ">")

_THRESHOLD = re.compile(
    r"^\s*(?P<agg>[a-z]+|p\(\s*(?P<pct>\d+(?:\.\d+)?)\s*\))\s*(?P<op>===|!==|<=|>=|==|!=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)

# One machine's load generator: the rate and the connections it can hold, a run of at most a day.
MAX_RATE = 1_000_000.0
MAX_VUS = 100_000
VerifyDuration = Annotated[float, duration_upto(DAY)]

Operator = Literal["<", "<=", ">", ">=", "==", "!="]


@dataclass(frozen=True)
class ThresholdExpr:
    """One parsed threshold: ``aggregation operator value`` on ``metric``."""

    metric: str
    expr: str  # as written
    aggregation: str  # "avg", "min", "med", "max", "p", "rate", "count"
    percentile: float | None  # for "p"
    op: Operator
    value: float

    def holds(self, observed: float) -> bool:
        if math.isnan(observed):
            return False
        match self.op:
            case "<":
                return observed < self.value
            case "<=":
                return observed <= self.value
            case ">":
                return observed > self.value
            case ">=":
                return observed >= self.value
            case "==":
                return observed == self.value
            case "!=":
                return observed != self.value


def parse_threshold(metric: str, text: str) -> ThresholdExpr:
    """Parse one k6 threshold for ``metric``; raises ValueError with a message meant for people."""
    if metric not in METRIC_AGGREGATIONS:
        known = ", ".join(METRIC_AGGREGATIONS)
        raise ValueError(f"unknown metric {metric!r} (known: {known})")
    allowed = METRIC_AGGREGATIONS[metric]
    m = _THRESHOLD.match(text)
    if m is None:
        raise ValueError(
            f"invalid threshold {text!r}: expected 'AGGREGATION OPERATOR NUMBER' like "
            f"'{_example(metric)}' (aggregations for {metric}: {', '.join(allowed)}; operators: <, <=, >, >=, ==, !=)"
        )
    agg = m.group("agg")
    pct: float | None = None
    if m.group("pct") is not None:
        pct = float(m.group("pct"))
        if "p(N)" not in allowed:
            raise ValueError(f"invalid threshold {text!r}: {metric} has no percentiles (use {', '.join(allowed)})")
        if not 0.0 <= pct <= 100.0:
            raise ValueError(f"invalid threshold {text!r}: percentile must be between 0 and 100")
        agg = "p"
    elif agg not in allowed:
        raise ValueError(f"invalid threshold {text!r}: {metric} has no {agg!r} (use {', '.join(allowed)})")
    op = {"===": "==", "!==": "!="}.get(m.group("op"), m.group("op"))
    value = float(m.group("value"))
    if not math.isfinite(value) or abs(value) > 1e12:
        raise ValueError(f"invalid threshold {text!r}: the number must be finite and at most 1e12")
    if metric == "http_req_failed" and not 0.0 <= value <= 1.0:
        raise ValueError(f"invalid threshold {text!r}: http_req_failed rate is a fraction between 0 and 1 "
                         f"(0.001 is 0.1 %)")
    return ThresholdExpr(metric, text.strip(), agg, pct, op, value)  # type: ignore[arg-type]


def _example(metric: str) -> str:
    return {"http_req_duration": "p(95)<500", "http_req_failed": "rate<0.01",
            "http_reqs": "rate>=1000", "dropped_iterations": "count==0"}[metric]


def _checker(metric: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        parse_threshold(metric, text)
        return text

    return check


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


DurationThresholds = Annotated[list[Annotated[str, AfterValidator(_checker("http_req_duration"))]],
                               BeforeValidator(_one_or_many), Field(max_length=100)]
FailedThresholds = Annotated[list[Annotated[str, AfterValidator(_checker("http_req_failed"))]],
                             BeforeValidator(_one_or_many), Field(max_length=100)]
RequestsThresholds = Annotated[list[Annotated[str, AfterValidator(_checker("http_reqs"))]],
                               BeforeValidator(_one_or_many), Field(max_length=100)]
DroppedThresholds = Annotated[list[Annotated[str, AfterValidator(_checker("dropped_iterations"))]],
                              BeforeValidator(_one_or_many), Field(max_length=100)]


class ThresholdsSpec(SpecModel):
    """k6-style thresholds per metric; each is a string or a list of strings."""

    http_req_duration: DurationThresholds = []
    http_req_failed: FailedThresholds = []
    http_reqs: RequestsThresholds = []
    dropped_iterations: DroppedThresholds = []

    def parsed(self) -> list[ThresholdExpr]:
        return [parse_threshold(metric, text) for metric in METRIC_AGGREGATIONS for text in getattr(self, metric)]


Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _status_list(value: Any) -> Any:
    return [value] if isinstance(value, int) else value


class ScenarioSpec(SpecModel):
    """One weighted request of the mix. Default: ``GET /``; success is a 2xx/3xx unless ``expect_status``."""

    name: str | None = None
    method: Annotated[Method, BeforeValidator(_upper)] = "GET"
    path: str = "/"
    headers: Annotated[dict[str, str], Field(max_length=100)] = {}
    body: str | None = None
    weight: Annotated[float, Field(gt=0, le=1e6)] = 1.0
    expect_status: Annotated[list[Annotated[StrictInt, Field(ge=100, le=599)]], BeforeValidator(_status_list),
                             Field(max_length=500)] = []

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or any(c in value for c in " \r\n"):
            raise ValueError(f"must start with '/' and contain no spaces or line breaks, got {value!r}")
        return value

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", key):
                raise ValueError(f"{key!r} is not a valid header name")
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {key} contains a line break")
            if key.lower() in {"host", "content-length", "transfer-encoding", "connection"}:
                raise ValueError(f"header {key} is set by the load generator")
        return headers

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


class VerifySpec(SpecModel):
    """Open-model load: ``rate`` requests/s for ``duration`` (after a linear ``ramp`` from 0, not judged)."""

    rate: Annotated[float, Field(gt=0, le=MAX_RATE)] = 1000.0
    duration: Annotated[VerifyDuration, Field(gt=0)] = 60.0
    ramp: VerifyDuration = 0.0
    max_vus: Annotated[StrictInt, Field(ge=1, le=MAX_VUS)] = 1000  # most connections (requests in flight) at once
    timeout: Annotated[float, duration_upto(600.0), Field(gt=0)] = 10.0  # per request, from its scheduled time
    thresholds: ThresholdsSpec = ThresholdsSpec()
    scenarios: Annotated[list[ScenarioSpec], Field(max_length=MAX_LIST)] = []
    scenarios_file: str | None = None  # TOML/YAML/JSON list of scenarios, relative to shipyard.toml
    before_switch: bool = False  # in deploys: verify the preview before switching traffic to it

    @model_validator(mode="after")
    def _one_source_of_scenarios(self) -> VerifySpec:
        if self.scenarios and self.scenarios_file:
            raise ValueError("set either scenarios or scenarios_file, not both")
        return self
