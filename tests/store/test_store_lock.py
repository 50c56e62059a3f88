"""The per-environment deployment lock: atomic in the database, across Store objects and processes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.errors import LockHeld
from shipyard.primitives.store import DeploymentRec, Store
from shipyard.primitives.store.store import INTERRUPTED_REASON

from .workerproc import Worker


def begin(store: Store, env: str = "staging", release: str = "r2", at: float = 100.0) -> DeploymentRec:
    return store.begin_deployment(env, kind="deploy", release=release, previous_release="r1",
                                  strategy="blue-green", plan=[{"name": "switch"}], started_at=at)


def test_second_begin_names_the_holder(store: Store) -> None:
    held = begin(store, release="r3")
    with pytest.raises(LockHeld) as err:
        begin(store, release="r4")
    assert str(err.value) == f"deployment {held.id} (deploy of r3) is already running on staging"
    assert err.value.exit_code == 3
    # The refused attempt left no trace.
    assert [d.id for d in store.list_deployments("staging")] == [held.id]


def test_lock_is_per_environment(store: Store) -> None:
    begin(store, env="staging")
    prod = begin(store, env="prod")
    assert store.running_deployment("prod") == prod


def test_finish_releases_the_lock(store: Store) -> None:
    for outcome in ("succeeded", "failed", "rolled_back", "interrupted"):
        dep = begin(store)
        store.finish_deployment(dep.id, outcome=outcome, reason=None, finished_at=200.0)
        assert store.running_deployment("staging") is None
    assert [d.status for d in store.list_deployments("staging")] == [
        "interrupted", "rolled_back", "failed", "succeeded"]


def test_lock_across_store_objects(store: Store, open_another: Callable[[], Store]) -> None:
    other = open_another()
    held = begin(store)
    with pytest.raises(LockHeld, match=f"deployment {held.id} \\(deploy of r2\\)"):
        begin(other, release="r5")
    assert other.running_deployment("staging") == held
    store.finish_deployment(held.id, outcome="succeeded", reason=None, finished_at=101.0)
    assert begin(other, release="r5").release == "r5"


def test_interrupt_running_releases_and_marks(store: Store) -> None:
    done = begin(store, env="dev")
    store.finish_deployment(done.id, outcome="succeeded", reason=None, finished_at=101.0)
    staging = begin(store, env="staging")
    prod = begin(store, env="prod")
    s_done = store.add_step(staging.id, index=0, name="start", status="running", started_at=100.0)
    store.update_step(s_done, status="succeeded", duration_s=1.0)
    s_run = store.add_step(staging.id, index=1, name="wait ready", status="running", started_at=101.0)
    s_pend = store.add_step(staging.id, index=2, name="switch", status="pending", started_at=None)

    interrupted = store.interrupt_running(now=110.0)

    assert sorted(d.id for d in interrupted) == sorted([staging.id, prod.id])
    for dep in interrupted:
        assert (dep.status, dep.finished_at, dep.reason) == ("interrupted", 110.0, INTERRUPTED_REASON)
        assert store.get_deployment(dep.id) == dep
    assert store.get_deployment(done.id).status == "succeeded"  # type: ignore[union-attr]
    assert store.running_deployment("staging") is None and store.running_deployment("prod") is None
    steps = {s.id: s for s in store.list_steps(staging.id)}
    assert (steps[s_done].status, steps[s_done].duration_s) == ("succeeded", 1.0)
    assert steps[s_run].status == "failed"
    assert steps[s_run].duration_s == pytest.approx(9.0)
    assert steps[s_pend].status == "skipped"
    assert store.interrupt_running(now=120.0) == []
    # The next deploy works.
    assert begin(store, env="staging", at=130.0).status == "running"


def test_lock_held_by_another_process(store: Store, workers: Callable[..., Worker]) -> None:
    holder = workers("hold", "r7")
    holder.wait_ready()
    holder.go()
    dep_id = holder.result()["deployment"]
    with pytest.raises(LockHeld, match=f"deployment {dep_id} \\(deploy of r7\\) is already running on staging"):
        begin(store)
    holder.go()
    assert holder.result() == {"finished": dep_id}
    assert begin(store).status == "running"


def test_lock_of_a_killed_process_is_released_by_interrupt(store: Store, workers: Callable[..., Worker]) -> None:
    holder = workers("hold", "r7")
    holder.wait_ready()
    holder.go()
    dep_id = holder.result()["deployment"]
    holder.proc.kill()
    holder.proc.wait(timeout=60)
    # A dead holder still holds: only the restarted control plane may declare it interrupted.
    with pytest.raises(LockHeld):
        begin(store)
    assert [d.id for d in store.interrupt_running(now=150.0)] == [dep_id]
    assert begin(store).status == "running"


def test_racing_processes_one_wins(store: Store, workers: Callable[..., Worker]) -> None:
    racers = [workers("begin", f"r{n}") for n in range(4)]
    for w in racers:
        w.wait_ready()
    for w in racers:
        w.go()
    results = [w.result() for w in racers]
    winners = [r["deployment"] for r in results if "deployment" in r]
    assert len(winners) == 1, results
    (winner,) = winners
    for r in results:
        if "lock_held" in r:
            assert r["lock_held"].startswith(f"deployment {winner} (deploy of r")
    running = store.running_deployment("staging")
    assert running is not None and running.id == winner
    assert [d.id for d in store.list_deployments("staging")] == [winner]
