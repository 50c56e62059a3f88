"""Promotion, pure: may ``release`` go to an environment whose ``[promotion]`` names where it must have
served first, for how long, and whether it must have passed verify there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shipyard.primitives.spec.durations import format_duration
from shipyard.primitives.spec.pipeline import PromotionSpec


@dataclass(frozen=True)
class ServiceRecord:
    """What the source environment's history says of one release."""

    served_s: float | None = None  # its longest continuous time serving there (None: never served)
    serving_since: float | None = None  # when it started serving there, if it serves now
    verified: bool = False  # a deploy's verify step passed for it there


def refusal(env: str, release: str, policy: PromotionSpec | None, record: ServiceRecord, now: float) -> str | None:
    """Why ``release`` may not be deployed to ``env`` now (None: it may)."""
    if policy is None:
        return None
    src = policy.from_
    if record.served_s is None:
        return f"{env} takes only releases that served {src}: {release} never served {src} (deploy it there first)"
    missing: list[str] = []
    if record.served_s < policy.soak:
        had = f"it has served {src} for {format_duration(record.served_s)}"
        if record.serving_since is not None:
            at = dt.datetime.fromtimestamp(record.serving_since + policy.soak, dt.UTC)
            missing.append(f"{had}, not {format_duration(policy.soak)}; it qualifies at {at:%Y-%m-%d %H:%M:%S} UTC")
        else:
            missing.append(f"{had} and no longer serves there, not {format_duration(policy.soak)}")
    if policy.require_verify and not record.verified:
        missing.append(f"it has not passed verify on {src} (require_verify; deploy it there with "
                       f"[environments.{src}.verify])")
    return f"{env} refuses {release}: " + "; ".join(missing) if missing else None
