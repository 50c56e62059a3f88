"""Base model and field types shared by every part of the spec.

Every number in the spec is bounded (docs/security.md, "Configuration bounds"): integers carry ``le=``,
floats are finite (``allow_inf_nan=False``) and bounded, durations are at most 30 days unless their type
says otherwise. Unbounded numbers turn a typo into a wedged daemon (``replicas = 1e22`` would plan
forever), so a new numeric field gets a bound too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from shipyard.primitives.spec.durations import DAY, MAX_DURATION, parse_duration, parse_percent


class SpecModel(BaseModel):
    """Strict config model: unknown keys are errors; instances are immutable; floats are finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def duration_upto(upper: float) -> BeforeValidator:
    def parse(value: Any) -> float:
        return parse_duration(value, upper=upper)

    return BeforeValidator(parse)


# Durations are written "1s" / "5m" / "1h" (or a number of seconds) and held as float seconds; ≤ 30 days.
Duration = Annotated[float, duration_upto(MAX_DURATION)]
# For the few keys that need more (backup retention `keep_within`, recovery objectives): ≤ 10 years.
LongDuration = Annotated[float, duration_upto(3650 * DAY)]
# Percentages are written "5%" and held as a fraction (0.05).
Percent = Annotated[float, BeforeValidator(parse_percent)]
# Bounds shared by several models.
MAX_REPLICAS = 1000
MAX_LIST = 1000  # items in any list of the spec (scenarios, paths, sources, ...)
MAX_TABLE = 1000  # keys in any table of user-named entries (env vars, analyses, headers)
MAX_FLOAT = 1e12  # plain numbers (thresholds, rates) that have no natural unit bound
