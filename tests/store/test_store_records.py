"""Round trips and ordering of every record, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest

from shipyard.errors import NotFound, Refused, ShipyardError
from shipyard.primitives.store import InstanceRec, ReleaseRec, Store


def release(rid: str, created_at: float, **changes: object) -> ReleaseRec:
    rec = ReleaseRec(
        id=rid, commit="a" * 40, ref="main", message=f"release {rid}\n\nbody ünïcode", author="Ada <ada@x>",
        created_at=created_at, build_duration_s=1.25, content_hash="sha256:" + "b" * 64,
        spec={"app": {"name": "svc", "run": "python3 app.py"}, "env": {"replicas": 3, "ratio": 0.5},
              "list": [1, "two", None, True]},
        secrets_version=4, build_log=f"/x/.shipyard/releases/{rid}/build.log", status="ready")
    return dataclasses.replace(rec, **changes)  # type: ignore[arg-type]


def instance(iid: str, env: str = "staging", release: str = "r1", index: int = 0, **changes: object) -> InstanceRec:
    rec = InstanceRec(id=iid, env=env, release=release, index=index, port=9000 + index, pid=4242,
                      create_time=1_700_000_123.456789, role="stable", state="ready",
                      started_at=1_700_000_100.5, restarts=0)
    return dataclasses.replace(rec, **changes)  # type: ignore[arg-type]


# -- releases ---------------------------------------------------------------------------------------------

def test_release_round_trip(store: Store) -> None:
    rec = release("r1", 1_700_000_000.123456)
    store.add_release(rec)
    assert store.get_release("r1") == rec
    assert store.get_release("nope") is None


def test_releases_newest_first_by_creation_time(store: Store) -> None:
    for rid, at in [("r2", 20.0), ("r1", 10.0), ("r3", 30.0)]:
        store.add_release(release(rid, at))
    assert [r.id for r in store.list_releases()] == ["r3", "r2", "r1"]


def test_duplicate_release_is_an_error(store: Store) -> None:
    store.add_release(release("r1", 1.0))
    with pytest.raises(ShipyardError, match="release r1 already exists"):
        store.add_release(release("r1", 2.0))


def test_failed_release_recorded(store: Store) -> None:
    store.add_release(release("r9", 1.0, status="failed"))
    got = store.get_release("r9")
    assert got is not None and got.status == "failed"


def test_delete_release(store: Store) -> None:
    store.add_release(release("r1", 1.0))
    store.add_release(release("r2", 2.0))
    store.delete_release("r1")
    assert [r.id for r in store.list_releases()] == ["r2"]
    store.delete_release("r1")  # already gone: nothing to do


def test_delete_release_refused_while_serving(store: Store) -> None:
    store.add_release(release("r1", 1.0))
    store.upsert_environment("staging", current_release="r1", updated_at=5.0)
    with pytest.raises(Refused, match="release r1 is serving on staging"):
        store.delete_release("r1")
    store.upsert_environment("staging", current_release=None, updated_at=6.0)
    store.upsert_instance(instance("staging-r1-0"))
    with pytest.raises(Refused, match="release r1 has instances on staging"):
        store.delete_release("r1")
    store.delete_instance("staging-r1-0")
    store.delete_release("r1")
    assert store.get_release("r1") is None


# -- environments -----------------------------------------------------------------------------------------

def test_environment_created_by_first_upsert(store: Store) -> None:
    assert store.get_environment("staging") is None
    env = store.upsert_environment("staging", current_release="r1", updated_at=10.5)
    assert (env.name, env.current_release, env.previous_release, env.routing, env.secrets_version,
            env.updated_at) == ("staging", "r1", None, None, 0, 10.5)
    assert store.get_environment("staging") == env


def test_environment_upsert_changes_only_given_fields(store: Store) -> None:
    table = {"env": "staging", "port": 8200, "weights": {"r2": 100},
             "pools": [{"release": "r2", "role": "stable", "instances": [{"id": "i1", "port": 9001}]}]}
    store.upsert_environment("staging", current_release="r1", secrets_version=2, updated_at=1.0)
    store.upsert_environment("staging", current_release="r2", previous_release="r1", updated_at=2.0)
    store.upsert_environment("staging", routing=table)
    env = store.get_environment("staging")
    assert env is not None
    assert (env.current_release, env.previous_release, env.secrets_version, env.updated_at) == ("r2", "r1", 2, 2.0)
    assert env.routing == table
    # None clears a field; omitted ones stay.
    env = store.upsert_environment("staging", previous_release=None, updated_at=3.0)
    assert (env.current_release, env.previous_release, env.routing, env.updated_at) == ("r2", None, table, 3.0)


def test_environment_upsert_with_no_fields(store: Store) -> None:
    store.upsert_environment("prod")
    store.upsert_environment("prod")
    env = store.get_environment("prod")
    assert env is not None and env.current_release is None


def test_list_environments_by_name(store: Store) -> None:
    for name in ["staging", "dev", "prod"]:
        store.upsert_environment(name, updated_at=1.0)
    assert [e.name for e in store.list_environments()] == ["dev", "prod", "staging"]


# -- deployments and steps ----------------------------------------------------------------------------

PLAN: list[dict[str, Any]] = [{"name": "start r2", "kind": "start", "count": 3}, {"name": "switch", "kind": "switch", "weights": {"r2": 100}}]


def test_deployment_round_trip(store: Store) -> None:
    dep = store.begin_deployment("staging", kind="deploy", release="r2", previous_release="r1",
                                 strategy="blue-green", plan=PLAN, started_at=100.25)
    assert (dep.env, dep.kind, dep.release, dep.previous_release, dep.strategy, dep.status) == (
        "staging", "deploy", "r2", "r1", "blue-green", "running")
    assert dep.plan == PLAN and dep.finished_at is None and dep.reason is None and dep.detail is None
    assert dep.running and dep.duration_s is None
    assert store.get_deployment(dep.id) == dep
    assert store.running_deployment("staging") == dep

    done = store.finish_deployment(dep.id, outcome="failed", reason="instance r2-1 never became ready",
                                   finished_at=130.75, detail={"failed_step": 1})
    assert (done.status, done.reason, done.finished_at, done.detail) == (
        "failed", "instance r2-1 never became ready", 130.75, {"failed_step": 1})
    assert done.duration_s == pytest.approx(30.5)
    assert store.get_deployment(dep.id) == done
    assert store.running_deployment("staging") is None
    assert store.get_deployment(dep.id + 1000) is None


def test_finish_keeps_detail_when_none_given(store: Store) -> None:
    dep = store.begin_deployment("staging", kind="rollback", release="r1", previous_release="r2",
                                 strategy="switch", plan=[], started_at=1.0, detail={"warm": True})
    store.set_deployment_detail(dep.id, {"warm": True, "switched_at": 1.5})
    done = store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=2.0)
    assert done.detail == {"warm": True, "switched_at": 1.5}


def test_finish_twice_or_unknown(store: Store) -> None:
    dep = store.begin_deployment("staging", kind="deploy", release="r1", previous_release=None,
                                 strategy="rolling", plan=[], started_at=1.0)
    store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=2.0)
    with pytest.raises(ShipyardError, match=f"deployment {dep.id} is not running \\(it is succeeded\\)"):
        store.finish_deployment(dep.id, outcome="failed", reason="late", finished_at=3.0)
    assert store.get_deployment(dep.id).status == "succeeded"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        store.finish_deployment(999_999, outcome="failed", reason=None, finished_at=3.0)
    with pytest.raises(ValueError, match="outcome"):
        store.finish_deployment(dep.id, outcome="running", reason=None, finished_at=3.0)


def test_deployments_newest_first_per_env_with_limit(store: Store) -> None:
    ids: dict[str, list[int]] = {"staging": [], "prod": []}
    for n in range(4):
        for env in ("staging", "prod"):
            dep = store.begin_deployment(env, kind="deploy", release=f"r{n}", previous_release=None,
                                         strategy="rolling", plan=[], started_at=float(n))
            store.finish_deployment(dep.id, outcome="succeeded", reason=None, finished_at=n + 0.5)
            ids[env].append(dep.id)
    assert [d.id for d in store.list_deployments("staging")] == ids["staging"][::-1]
    assert [d.id for d in store.list_deployments("prod", limit=2)] == ids["prod"][::-1][:2]
    assert len(store.list_deployments(None)) == 8
    assert store.list_deployments("dev") == []


def test_steps_round_trip_in_index_order(store: Store) -> None:
    dep = store.begin_deployment("staging", kind="deploy", release="r2", previous_release="r1",
                                 strategy="rolling", plan=PLAN, started_at=10.0)
    other = store.begin_deployment("prod", kind="deploy", release="r2", previous_release=None,
                                   strategy="rolling", plan=[], started_at=10.0)
    s2 = store.add_step(dep.id, index=2, name="drain r1", status="pending", started_at=None)
    s0 = store.add_step(dep.id, index=0, name="start r2-0", status="running", started_at=10.5,
                        detail={"instance": "r2-0"})
    s1 = store.add_step(dep.id, index=1, name="switch", status="pending", started_at=None)
    store.add_step(other.id, index=0, name="elsewhere", status="pending", started_at=None)

    store.update_step(s0, status="succeeded", duration_s=2.25)
    store.update_step(s1, status="failed", duration_s=0.5, detail={"error": "port 8200 is in use"}, started_at=13.0)
    store.update_step(s2, status="skipped", duration_s=None)

    steps = store.list_steps(dep.id)
    assert [(s.id, s.index, s.name, s.status) for s in steps] == [
        (s0, 0, "start r2-0", "succeeded"), (s1, 1, "switch", "failed"), (s2, 2, "drain r1", "skipped")]
    assert steps[0].deployment_id == dep.id
    assert (steps[0].started_at, steps[0].duration_s, steps[0].detail) == (10.5, 2.25, {"instance": "r2-0"})
    assert (steps[1].started_at, steps[1].duration_s, steps[1].detail) == (13.0, 0.5, {"error": "port 8200 is in use"})
    assert (steps[2].started_at, steps[2].duration_s, steps[2].detail) == (None, None, None)


def test_step_errors(store: Store) -> None:
    with pytest.raises(NotFound, match="deployment 424242"):  # foreign keys are enforced
        store.add_step(424242, index=0, name="x", status="pending", started_at=None)
    with pytest.raises(NotFound, match="step 434343"):
        store.update_step(434343, status="succeeded", duration_s=1.0)
    dep = store.begin_deployment("staging", kind="deploy", release="r1", previous_release=None,
                                 strategy="rolling", plan=[], started_at=1.0)
    with pytest.raises(ValueError, match="step status"):
        store.add_step(dep.id, index=0, name="x", status="done", started_at=None)


# -- events ---------------------------------------------------------------------------------------------

def test_events_round_trip_newest_first_filtered(store: Store) -> None:
    e1 = store.add_event("staging", "deploy.started", "deployment 1 started", data={"deployment": 1}, at=1.0)
    e2 = store.add_event("staging", "instance.crashed", "instance r1-0 exited 1; restarting in 1s", at=2.0)
    e3 = store.add_event("prod", "deploy.started", "deployment 2 started", at=3.0)
    e4 = store.add_event(None, "control.started", "control plane started", at=4.0)
    e5 = store.add_event("staging", "deploy.succeeded", "deployment 1 succeeded", at=5.0)

    every = store.list_events()
    assert [e.id for e in every] == [e5, e4, e3, e2, e1]
    assert (every[-1].env, every[-1].kind, every[-1].message, every[-1].data, every[-1].at) == (
        "staging", "deploy.started", "deployment 1 started", {"deployment": 1}, 1.0)
    assert every[1].env is None and every[1].data is None
    assert [e.id for e in store.list_events("staging")] == [e5, e2, e1]
    assert [e.id for e in store.list_events("staging", limit=2)] == [e5, e2]
    assert [e.id for e in store.list_events(kinds=["deploy.started"])] == [e3, e1]
    assert [e.id for e in store.list_events("staging", kinds={"deploy.started", "deploy.succeeded"})] == [e5, e1]
    assert store.list_events("staging", kinds=[]) == []


# -- instances ------------------------------------------------------------------------------------------

def test_instance_round_trip_and_upsert(store: Store) -> None:
    rec = instance("staging-r1-0")
    store.upsert_instance(rec)
    assert store.get_instance("staging-r1-0") == rec
    moved = dataclasses.replace(rec, pid=5151, create_time=1_700_000_999.25, state="restarting", restarts=2,
                                role="old")
    store.upsert_instance(moved)
    assert store.get_instance("staging-r1-0") == moved
    assert store.get_instance("nope") is None
    store.delete_instance("staging-r1-0")
    assert store.get_instance("staging-r1-0") is None


def test_instance_without_process_yet(store: Store) -> None:
    rec = instance("staging-r2-0", pid=None, create_time=None, started_at=None, state="starting")
    store.upsert_instance(rec)
    assert store.get_instance("staging-r2-0") == rec


def test_list_instances(store: Store) -> None:
    recs = [instance("staging-r2-1", release="r2", index=1), instance("staging-r1-0"),
            instance("prod-r1-0", env="prod"), instance("staging-r2-0", release="r2", index=0)]
    for rec in recs:
        store.upsert_instance(rec)
    assert [i.id for i in store.list_instances("staging")] == ["staging-r1-0", "staging-r2-0", "staging-r2-1"]
    assert [i.id for i in store.list_instances()] == ["prod-r1-0", "staging-r1-0", "staging-r2-0", "staging-r2-1"]


# -- backups and drills -------------------------------------------------------------------------------

def test_backup_runs_round_trip(store: Store) -> None:
    b1 = store.add_backup_run("prod", "postgres:main", status="succeeded", started_at=1.0, finished_at=9.5,
                              backup_id="20240101T000000Z-full", detail={"bytes": 123456, "kind": "full"})
    b2 = store.add_backup_run("prod", "files:instance", status="failed", started_at=10.0, finished_at=None,
                              backup_id=None, detail=None)
    store.add_backup_run("staging", "files:instance", status="succeeded", started_at=11.0, finished_at=12.0,
                         backup_id="x", detail={})
    runs = store.list_backup_runs("prod", limit=10)
    assert [r.id for r in runs] == [b2, b1]
    assert (runs[1].env, runs[1].source, runs[1].status, runs[1].started_at, runs[1].finished_at,
            runs[1].backup_id, runs[1].detail) == (
        "prod", "postgres:main", "succeeded", 1.0, 9.5, "20240101T000000Z-full", {"bytes": 123456, "kind": "full"})
    assert (runs[0].finished_at, runs[0].backup_id, runs[0].detail) == (None, None, None)
    assert [r.id for r in store.list_backup_runs("prod", limit=1)] == [b2]
    assert len(store.list_backup_runs(None)) == 3


def test_drills_round_trip(store: Store) -> None:
    d1 = store.add_drill("prod", ok=True, started_at=1.0, detail={"rto_s": 12.5, "rpo_s": 30.0})
    d2 = store.add_drill("prod", ok=False, started_at=2.0, detail={"error": "checksum mismatch"})
    store.add_drill("staging", ok=True, started_at=3.0, detail={})
    drills = store.list_drills("prod", limit=10)
    assert [d.id for d in drills] == [d2, d1]
    assert (drills[0].ok, drills[0].detail) == (False, {"error": "checksum mismatch"})
    assert (drills[1].env, drills[1].ok, drills[1].started_at, drills[1].detail) == (
        "prod", True, 1.0, {"rto_s": 12.5, "rpo_s": 30.0})
    assert drills[1].ok is True
    assert len(store.list_drills(None)) == 3


def test_data_survives_reopen(store: Store, open_another: Callable[[], Store]) -> None:
    store.add_release(release("r1", 1.0))
    store.upsert_environment("staging", current_release="r1", updated_at=1.0)
    again = open_another()
    assert again.get_release("r1") == store.get_release("r1")
    env = again.get_environment("staging")
    assert env is not None and env.current_release == "r1"


def test_writes_from_many_threads(store: Store) -> None:
    # The control plane calls the store from worker threads; SQLite must queue them, not fail.
    def write(n: int) -> None:
        for k in range(10):
            store.add_event("staging", "tick", f"thread {n} event {k}", at=float(k))
            store.upsert_environment("staging", secrets_version=n, updated_at=float(k))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert len(store.list_events("staging", limit=1000)) == 60
