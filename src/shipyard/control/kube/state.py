"""A kubernetes environment's deployments in shipyard's state database, and its status read back from the
cluster.

There is no control plane in the path of a kube deploy (the CLI talks to the API server), so the CLI is
the writer here: each deploy or rollback is a ``deployments`` row (taking the environment's lock, so two
deploys through one database cannot overlap), its steps with their durations, the performer, and on
success the environment's serving and previous release. ``history`` reads those rows. ``status`` never
trusts them for what runs: replicas, readiness and images come from the API server at the time asked.
The audit rows of kube deploys, rollbacks, runs and canary commands, and the images built, go through here
too: this is the one module of the CLI's path that opens the store (docs/architecture.md, "Kubernetes").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from shipyard.control.kube import records
from shipyard.control.kube.cluster import Cluster
from shipyard.control.kube.deployer import KubeResult
from shipyard.engine.kube.render import SLOT_LABEL, k8s_name
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store, StoreReader, open_store
from shipyard.primitives.store.images import ImageRec

__all__ = ["ImageRec", "KubeHistory", "StateDB", "history_rows", "live_status"]  # ImageRec: for image.py


class KubeHistory:
    """Records one environment's kube deploys and rollbacks as the local ones are recorded."""

    def __init__(self, store: Store, clock: Clock, performer: str) -> None:
        self.store, self.clock, self.performer = store, clock, performer

    async def run(self, env: str, kind: str, release: str, strategy: str, plan: list[dict[str, Any]],
                  body: Callable[[], Awaitable[KubeResult]]) -> tuple[KubeResult, int]:
        """Run ``body`` as deployment ``kind`` of ``release`` (its id is returned with the result); an
        exception is recorded as a failure, then raised."""
        before = self.store.get_environment(env)
        previous = before.current_release if before else None
        started = self.clock.time()
        dep = self.store.begin_deployment(env, kind=kind, release=release, previous_release=previous,
                                          strategy=strategy, plan=plan, started_at=started,
                                          detail={"performer": self.performer, "target": "kubernetes"})
        # As a local deploy is audited: who started which deployment (`shipyard audit` lists it).
        self.store.add_audit(started, self.performer, kind, env, f"deployment {dep.id}",
                             {"release": release, "previous_release": previous, "target": "kubernetes"})
        try:
            res = await body()
        except BaseException as err:
            self.store.finish_deployment(dep.id, outcome="failed", reason=str(err) or type(err).__name__,
                                         finished_at=self.clock.time())
            raise
        self._steps(dep.id, started, res.steps)
        outcome = res.outcome
        if outcome != "succeeded" and any(s.get("kind") == "restore" and s.get("status") == "succeeded"
                                          for s in res.steps):
            outcome = "rolled_back"  # the serving release's objects were applied back
        self.store.finish_deployment(dep.id, outcome=outcome, reason=res.reason, finished_at=self.clock.time(),
                                     detail={"performer": self.performer, "target": "kubernetes",
                                             "pruned": res.pruned})
        if res.outcome == "succeeded":
            self.store.upsert_environment(env, current_release=res.release,
                                          previous_release=res.previous if res.previous != res.release else previous,
                                          updated_at=self.clock.time())
        return res, dep.id

    def _steps(self, dep_id: int, started: float, steps: list[dict[str, Any]]) -> None:
        at = started
        for i, step in enumerate(steps):
            status = step.get("status", "succeeded")
            status = status if status in ("succeeded", "failed", "skipped") else "succeeded"
            sid = self.store.add_step(dep_id, index=i, name=str(step.get("kind")), status="running", started_at=at,
                                      detail={k: v for k, v in step.items() if k not in ("kind", "status")})
            took = float(step.get("duration_s") or 0.0)
            self.store.update_step(sid, status=status, duration_s=took)
            at += took


def history_rows(store: StoreReader, env: str, limit: int) -> list[dict[str, Any]]:
    """``shipyard history``'s rows, as the control API gives them for a local environment."""
    rows = []
    for d in store.list_deployments(env, limit=limit):
        dur = (d.finished_at - d.started_at) if d.finished_at else None
        detail = d.detail or {}
        rows.append({"deployment": d.id, "env": d.env, "kind": d.kind, "release": d.release,
                     "previous_release": d.previous_release, "strategy": d.strategy, "outcome": d.status,
                     "reason": d.reason, "started_at": d.started_at, "finished_at": d.finished_at,
                     "duration_s": round(dur, 3) if dur is not None else None, "rollback": detail.get("rollback"),
                     "trigger": detail.get("trigger"), "performer": detail.get("performer"),
                     "steps": [{"name": s.name, "status": s.status, "started_at": s.started_at,
                                "duration_s": s.duration_s} for s in store.list_steps(d.id)]})
    return rows


async def live_status(cluster: Cluster, app: str, env: str, store: StoreReader) -> dict[str, Any]:
    """What the cluster runs for ``env`` now (Deployments, pods, autoscaler), beside what the state database
    recorded (the last deployment, the serving release it set)."""
    base = k8s_name(f"{app}-{env}")
    await cluster.check()
    rec = await records.read_env(cluster, base)
    deployments = []
    for name in (base, f"{base}-blue", f"{base}-green"):
        dep = await cluster.get("apps/v1", "Deployment", name)
        if dep is not None:
            deployments.append(_deployment(dep))
    pods = await cluster.objects("v1", "Pod", labels={"app.kubernetes.io/instance": base})
    hpa = await cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", base)
    env_rec = store.get_environment(env)
    last = store.list_deployments(env, limit=1)
    running = store.running_deployment(env)
    for d in deployments:
        d["serving"] = d["slot"] == rec.slot if rec.slot else d["name"] == base
    serving = next((d for d in deployments if d["serving"]), None)
    return {
        "env": env, "target": "kubernetes", "namespace": cluster.namespace,
        "release": rec.current,  # what the cluster's applyset parent says serves, not the database
        "previous_release": rec.previous,
        "recorded_release": env_rec.current_release if env_rec else None,
        "slot": rec.slot,
        "replicas": serving["replicas"] if serving else 0,
        "ready": serving["ready"] if serving else 0,
        "deployments": deployments,
        "autoscaler": ({"min": (hpa.get("spec") or {}).get("minReplicas"), "max": hpa["spec"].get("maxReplicas"),
                        "current": (hpa.get("status") or {}).get("currentReplicas"),
                        "desired": (hpa.get("status") or {}).get("desiredReplicas")} if hpa else None),
        "pods": [_pod(p) for p in sorted(pods, key=lambda p: p["metadata"]["name"])],
        "deployment": ({"id": running.id, "kind": running.kind, "release": running.release} if running else None),
        "last_deployment": ({"id": last[0].id, "kind": last[0].kind, "release": last[0].release,
                             "outcome": last[0].status, "reason": last[0].reason,
                             "finished_at": last[0].finished_at} if last else None),
    }


def _deployment(dep: dict[str, Any]) -> dict[str, Any]:
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    tpl = (spec.get("template") or {}).get("metadata") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    return {"name": dep["metadata"]["name"], "release": (tpl.get("labels") or {}).get("shipyard.dev/release"),
            "slot": (tpl.get("labels") or {}).get(SLOT_LABEL), "image": containers[0].get("image"),
            "replicas": int(st.get("replicas") or 0), "ready": int(st.get("readyReplicas") or 0),
            "updated": int(st.get("updatedReplicas") or 0), "available": int(st.get("availableReplicas") or 0),
            "desired": spec.get("replicas"), "serving": False}


def _pod(p: dict[str, Any]) -> dict[str, Any]:
    st = p.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
    restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or [])
    return {"name": p["metadata"]["name"], "release": (p["metadata"].get("labels") or {}).get("shipyard.dev/release"),
            "phase": st.get("phase"), "ready": ready, "restarts": restarts, "node": (p.get("spec") or {}).get("nodeName")}


class StateDB:
    """The project's state database as a kube command uses it (opened per command, closed after)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(None, state_dir)

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()

    def history(self, clock: Clock, performer: str) -> KubeHistory:
        return KubeHistory(self.store, clock, performer)

    def rows(self, env: str, limit: int) -> list[dict[str, Any]]:
        return history_rows(self.store, env, limit)

    def audit(self, at: float, performer: str, action: str, env: str, target: str | None,
              detail: dict[str, Any]) -> None:
        """One audit row, as the control plane writes it for the same command on a local environment."""
        self.store.add_audit(at, performer, action, env, target, {**detail, "target": "kubernetes"})

    def image(self, release: str) -> ImageRec | None:
        return self.store.get_image(release)

    def put_image(self, rec: ImageRec) -> None:
        self.store.put_image(rec)

    def newest_image(self, commit: str, repository: str) -> ImageRec | None:
        """The newest image built of ``commit`` into ``repository`` (another environment's registry may be
        out of this cluster's reach)."""
        return next((r for r in self.store.images_of_commit(commit) if r.repository == repository), None)

    def serving(self, env: str) -> str | None:
        rec = self.store.get_environment(env)
        return rec.current_release if rec else None
