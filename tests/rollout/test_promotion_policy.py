"""Promotion policy, pure: soak time and verify, judged at a given moment."""

from __future__ import annotations

from shipyard.engine.rollout.promotion import ServiceRecord, refusal
from shipyard.primitives.spec.pipeline import PromotionSpec

POLICY = PromotionSpec.model_validate({"from": "staging", "soak": "30m", "require_verify": True})


def test_never_served_names_the_source() -> None:
    why = refusal("prod", "r2", POLICY, ServiceRecord(), now=1000.0)
    assert why is not None and "never served staging" in why


def test_too_young_says_when_it_qualifies() -> None:
    why = refusal("prod", "r2", POLICY, ServiceRecord(served_s=600.0, serving_since=1_700_000_000.0, verified=True),
                  now=1_700_000_600.0)
    assert why is not None and "10m, not 30m" in why and "qualifies at 2023-11-14 22:43:20 UTC" in why


def test_soaked_and_verified_qualifies_and_unverified_does_not() -> None:
    soaked = ServiceRecord(served_s=1800.0, serving_since=0.0, verified=True)
    assert refusal("prod", "r2", POLICY, soaked, now=1800.0) is None
    why = refusal("prod", "r2", POLICY, ServiceRecord(served_s=1800.0, serving_since=0.0), now=1800.0)
    assert why is not None and "has not passed verify on staging" in why
    assert refusal("prod", "r2", None, ServiceRecord(), now=0.0) is None
