"""The canary plan (pure) and how the executor runs and fails its ``canary`` steps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rollout.fakes import TargetRunners
from shipyard.engine.rollout.canary import expand
from shipyard.engine.rollout.executor import execute
from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.engine.rollout.steps import Step
from shipyard.engine.rollout.strategies import RolloutSettings, plan_blue_green, plan_deploy, plan_rolling
from shipyard.engine.rollout.target import DrainResult
from shipyard.errors import BadInput, DeployFailed
from shipyard.primitives.clock import ManualClock
from shipyard.primitives.spec.rollout import CanarySpec


def state(current: str | None, n: int, *, previous: str | None = None, warm: int = 0) -> EnvState:
    insts = [InstanceView(f"{current}-{i}", current, True) for i in range(n)] if current else []
    insts += [InstanceView(f"{previous}-{i}", previous, True, "old") for i in range(warm)] if previous else []
    return EnvState("prod", current, previous, tuple(insts), {current: 100} if current else {})


def settings(spec: CanarySpec | None = None, **kw: Any) -> RolloutSettings:
    return RolloutSettings(canary_steps=tuple(expand(spec or CanarySpec())), **kw)


def test_canary_plan_from_the_short_form() -> None:
    spec = CanarySpec.model_validate({"steps": [10, 50, 100], "step_duration": "30s"})
    s = settings(spec, replicas=2, drain_timeout=15, scale_down_delay=120, deploy_timeout=60)
    steps = plan_deploy("canary", s, state("A", 2), "B")
    assert [x.kind for x in steps] == ["start", "wait_ready", *["canary"] * 5, "route", "drain", "keep_warm"]
    assert steps[0].params == {"release": "B", "count": 2, "tag": "new", "role": "canary"}
    assert steps[1].params == {"tag": "new", "timeout": 60}
    canary = [{**x.params["phase"], "release": x.params["release"], "stable": x.params["stable"]}
              for x in steps if x.kind == "canary"]
    assert [(p["kind"], p["weight"], p["duration"]) for p in canary] == [
        ("weight", 10, None), ("bake", 10, 30.0), ("weight", 50, None), ("bake", 50, 30.0), ("weight", 100, None)]
    assert [p["index"] for p in canary] == [0, 1, 2, 3, 4]
    assert all((p["release"], p["stable"]) == ("B", "A") for p in canary)
    route, drain, warm = steps[-3:]
    assert route.params == {"weights": {"B": 100}, "commit": {"current": "B", "previous": "A"}}
    assert drain.params == {"release": "A", "timeout": 15}
    assert warm.params == {"release": "A", "delay": 120}


def test_canary_plan_verifies_after_promotion_and_stops_strays() -> None:
    s = settings(replicas=1, verify=True)
    steps = plan_deploy("canary", s, state("B", 2, previous="A", warm=2), "C")
    assert steps[0].kind == "stop" and steps[0].params == {"release": "A"}
    kinds = [x.kind for x in steps]
    assert kinds[kinds.index("route"):] == ["route", "verify", "drain", "keep_warm"]
    assert steps[kinds.index("verify")].params == {"release": "C", "preview": False}


_item: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.integers(1, 100).map(lambda w: {"weight": w}),
    st.integers(1, 600).map(lambda s: {"pause": f"{s}s"}),
    st.just({"pause": {}}),
    st.just({"analysis": "canary"}),
)


@given(
    short=st.lists(st.integers(1, 100), min_size=1, max_size=5),
    full=st.tuples(st.integers(1, 100), st.lists(_item, max_size=5)),
    use_short=st.booleans(),
    replicas=st.integers(1, 4),
)
def test_one_canary_step_per_expanded_step_but_promote(short: list[int], full: tuple[int, list[dict[str, Any]]],
                                                        use_short: bool, replicas: int) -> None:
    items: list[Any] = short if use_short else [{"weight": full[0]}, *full[1]]
    spec = CanarySpec.model_validate({"steps": items})
    expanded = expand(spec)
    steps = plan_deploy("canary", RolloutSettings(replicas=replicas, canary_steps=tuple(expanded)), state("A", 2), "B")
    canary = [x for x in steps if x.kind == "canary"]
    wanted = [c for c in expanded if c.kind != "promote"]
    # Each canary step carries its expanded step whole: the runner never looks one up by index.
    assert [x.phase for x in canary] == wanted
    assert all(x.description == x.phase.description for x in canary)
    kinds = [x.kind for x in steps]
    first, last = kinds.index("canary"), len(kinds) - 1 - kinds[::-1].index("canary")
    assert kinds[:first] == ["start", "wait_ready"] and kinds[last + 1:] == ["route", "drain", "keep_warm"]
    assert steps[0].params["count"] == replicas and steps[0].params["role"] == "canary"


def test_without_a_serving_release_canary_is_blue_green() -> None:
    s = settings(replicas=2)
    assert plan_deploy("canary", s, state(None, 0), "B") == plan_blue_green(s, state(None, 0), "B")
    # A current release with nothing running (all stopped): nothing to compare with or fall back on.
    empty = EnvState("prod", "A", None, (), {"A": 100})
    assert plan_deploy("canary", s, empty, "B") == plan_blue_green(s, empty, "B")
    assert not any(x.kind == "canary" for x in plan_deploy("canary", s, empty, "B"))


def test_same_release_again_is_rolling() -> None:
    s = settings(replicas=3)
    assert plan_deploy("canary", s, state("A", 3), "A") == plan_rolling(s, state("A", 3), "A")


def test_canary_without_steps_and_unknown_strategy() -> None:
    with pytest.raises(BadInput, match="canary strategy needs canary steps"):
        plan_deploy("canary", RolloutSettings(replicas=1), state("A", 1), "B")
    with pytest.raises(BadInput, match="expected rolling, blue-green or canary"):
        plan_deploy("linear", settings(replicas=1), state("A", 1), "B")


# -- the executor and canary steps -------------------------------------------------------------------

class Rollback(DeployFailed):
    """Like control.canary.CanaryRollback: an error that says more than its message."""

    def __init__(self, message: str, detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class Target:
    def __init__(self, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_at, self.error = fail_at, error

    async def start(self, release: str, count: int, role: str) -> list[str]:
        self.calls.append(("start", (release, count, role)))
        return [f"{release}-new{k}" for k in range(count)]

    async def wait_ready(self, ids: list[str], timeout: float) -> None:
        self.calls.append(("wait_ready", ids))
        if self.fail_at == -1:
            raise DeployFailed("not ready")

    async def canary(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("canary", params))
        if params["index"] == self.fail_at:
            assert self.error is not None
            raise self.error
        return {"weight": params["weight"]}

    async def set_weights(self, weights: Any, commit: Any) -> None:
        self.calls.append(("route", (dict(weights), commit)))

    async def unroute(self, ids: Any, weights: Any) -> None:
        self.calls.append(("unroute", ids))

    async def drain(self, release: str | None, ids: Any, timeout: float) -> DrainResult:
        self.calls.append(("drain", release))
        return DrainResult(True, 0)

    async def stop(self, ids: Any, release: str | None) -> None:
        self.calls.append(("stop", list(ids) if ids else release))

    async def keep_warm(self, release: str, delay: float) -> None:
        self.calls.append(("keep_warm", release))

    async def verify(self, release: str, preview: bool) -> dict[str, Any]:
        self.calls.append(("verify", release))
        return {"go": True}

    async def recover(self, serving: str | None, started: list[str], committed: bool) -> None:
        self.calls.append(("recover", (serving, started, committed)))


class Recorder:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def step_started(self, index: int, step: Step, at: float) -> int:
        self.rows.append({"kind": step.kind, "status": "running"})
        return len(self.rows) - 1

    def step_finished(self, step_id: int, status: str, duration_s: float, detail: dict[str, Any] | None) -> None:
        self.rows[step_id].update(status=status, detail=detail)


def _steps() -> list[Step]:
    return plan_deploy("canary", settings(replicas=2), state("A", 2), "B")  # 5 canary steps (indexes 0..4)


def _run(target: Target, rec: Recorder | None = None) -> Any:
    return asyncio.run(execute(_steps(), target, TargetRunners(target), rec or Recorder(), ManualClock(), serving="A"))


def test_canary_steps_run_in_order_and_promote() -> None:
    target = Target()
    res = _run(target)
    assert res.ok and res.committed and res.shifted
    assert [p["index"] for name, p in target.calls if name == "canary"] == [0, 1, 2, 3, 4]
    assert ("start", ("B", 2, "canary")) in target.calls
    assert res.results[2].detail == {"weight": 10}


def test_a_failed_canary_step_records_its_detail_and_recovers() -> None:
    detail = {"canary": {"weight": 10, "failing": [{"condition": "error_rate above 5% for 1m", "value": 0.3}]}}
    target, rec = Target(fail_at=1, error=Rollback("rollback trigger fired: error_rate 30%", detail)), Recorder()
    res = _run(target, rec)
    assert not res.ok and not res.committed
    assert res.shifted, "traffic reached the canary: the deployment rolled back rather than failed"
    assert res.reason == "rollback trigger fired: error_rate 30%"
    failed = res.results[3]
    assert (failed.status, failed.step.kind) == ("failed", "canary")
    assert failed.detail == {"error": "rollback trigger fired: error_rate 30%", **detail}
    assert rec.rows[3] == {"kind": "canary", "status": "failed", "detail": failed.detail}
    assert target.calls[-1] == ("recover", ("A", ["B-new0", "B-new1"], False))
    assert [r.status for r in res.results[4:]] == ["skipped"] * (len(res.results) - 4)
    assert "route" not in [name for name, _ in target.calls]


def test_a_plain_error_in_a_canary_step_has_only_its_message() -> None:
    res = _run(Target(fail_at=0, error=DeployFailed("router refused")))
    assert not res.ok and res.shifted
    assert res.results[2].detail == {"error": "router refused"}
    res = _run(Target(fail_at=0, error=RuntimeError("boom")))
    assert res.results[2].detail == {"error": "internal error in canary: RuntimeError('boom')"}


def test_failing_before_any_canary_step_did_not_shift_traffic() -> None:
    res = _run(Target(fail_at=-1))
    assert not res.ok and not res.shifted and not res.committed


def test_an_error_with_a_non_mapping_detail_still_recovers() -> None:
    target = Target(fail_at=0, error=Rollback("broke", ["some", "notes"]))
    res = _run(target)
    assert not res.ok and target.calls[-1][0] == "recover"
