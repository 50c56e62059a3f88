"""Base model and field types shared by every part of the spec."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict

from shipyard.primitives.spec.durations import parse_duration, parse_percent


class SpecModel(BaseModel):
    """Strict config model: unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Durations are written "1s" / "5m" / "1h" (or a number of seconds) and held as float seconds.
Duration = Annotated[float, BeforeValidator(parse_duration)]
# Percentages are written "5%" and held as a fraction (0.05).
Percent = Annotated[float, BeforeValidator(parse_percent)]
