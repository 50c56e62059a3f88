"""Deploy, plan and roll back one Kubernetes environment.

Kubernetes runs the rollout itself (the Deployment controller surges and retires pods), so this is not a
``DeployTarget``: that seam's per-instance operations (start N, set weights, drain) have no counterpart
here (docs/architecture.md, "Kubernetes"). The steps of a kube deploy, each shown by ``--plan``:
``release_job`` (the release command as a Job that must succeed), ``apply`` (server-side apply of every
object, applyset parent first), ``wait_rollout`` (observedGeneration, updated, available;
ProgressDeadlineExceeded fails naming the pods' reasons, and the previous release is applied back),
``prune`` (applyset members the new set lacks) and ``record``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shipyard.control.kube import records, rollouts
from shipyard.control.kube.cluster import Cluster, version_of
from shipyard.control.kube.releasejob import run_release_job
from shipyard.engine.kube import applyset
from shipyard.engine.kube.diff import diff_object, mask_secret
from shipyard.engine.kube.render import (
    RELEASE_LABEL,
    Manifest,
    ReleaseInput,
    release_job,
    render,
    selector_labels,
)
from shipyard.engine.kube.run_job import verdict
from shipyard.engine.kube.status import pod_reasons, rollout_status
from shipyard.errors import DeployFailed, NotFound
from shipyard.primitives.clock import Clock

Emit = Callable[[str], None]


@dataclass
class KubeResult:
    env: str
    release: str
    kind: str  # deploy | rollback
    outcome: str = "failed"
    reason: str | None = None
    previous: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "kind": self.kind, "release": self.release, "previous_release": self.previous,
                "outcome": self.outcome, "reason": self.reason, "steps": self.steps, "pruned": self.pruned}


def plan_steps(inp: ReleaseInput, manifests: Sequence[Manifest], job: Manifest | None) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if job is not None:
        steps.append({"kind": "release_job", "name": job["metadata"]["name"],
                      "timeout_s": job["spec"]["activeDeadlineSeconds"]})
    steps.append({"kind": "apply", "objects": [str(applyset.ObjectRef.of(m)) for m in manifests]})
    steps.append({"kind": "wait_rollout", "deployment": inp.deployment_name, "timeout_s": inp.env.deploy_timeout})
    if inp.slot:
        steps.append({"kind": "switch", "service": inp.base, "slot": inp.slot})
    steps.append({"kind": "prune", "applyset": records.parent_name(inp.base)})
    steps.append({"kind": "record", "release": inp.release})
    return steps


def with_slot(inp: ReleaseInput, env: records.EnvRecord) -> ReleaseInput:
    """Blue-green: the new release goes to the slot the serving one is not in."""
    if inp.env.strategy == "canary":
        rollouts.check_canary(inp)
        return inp
    if inp.env.strategy != "blue-green":
        return inp
    return replace(inp, slot="green" if env.slot == "blue" else "blue")


def split_switch(inp: ReleaseInput, manifests: Sequence[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """Blue-green applies the Service (the switch) only once the new slot is available."""
    if not inp.slot:
        return list(manifests), []
    return ([m for m in manifests if m["kind"] != "Service"], [m for m in manifests if m["kind"] == "Service"])


class KubeDeployer:
    def __init__(self, cluster: Cluster, clock: Clock, emit: Emit, poll: float = 0.5) -> None:
        self.cluster, self.clock, self.emit, self.poll = cluster, clock, emit, poll

    # --- plan -------------------------------------------------------------------------------------------
    async def plan(self, inp: ReleaseInput) -> dict[str, Any]:
        """Server-side dry run of every object: what would change, field by field; changes nothing."""
        await self.cluster.check()
        await rollouts.require_argo_for(self.cluster, inp)
        env = await records.read_env(self.cluster, inp.base)
        inp = with_slot(inp, env)
        manifests = self._members(inp, env)
        objects = await self._dry_run(manifests)
        prune = await self._prune_list(inp, env, manifests)
        job = release_job(inp, list(inp.env.release if inp.env.release is not None else inp.app.release),
                          inp.app.release_timeout)
        if job is not None:
            objects.insert(0, {"object": str(applyset.ObjectRef.of(job)), "action": await self._plan_job(job),
                               "changes": []})
        return {"env": inp.env.name, "release": inp.release, "serving": env.current, "namespace": self.cluster.namespace,
                "steps": plan_steps(inp, manifests, job), "objects": objects, "prune": [str(r) for r in prune]}

    async def _plan_job(self, job: Manifest) -> str:
        """What the deploy will do with the release Job (control/kube/releasejob.py): a release's Job that
        completed is not run again, one that failed is replaced; a new one is validated by the server."""
        before = await self.cluster.get("batch/v1", "Job", job["metadata"]["name"])
        if before is not None:
            v = verdict(before, None)
            if v.done:
                return "unchanged" if v.exit_code == 0 else "replace"
        await self.cluster.apply(job, dry_run=True)
        return "create" if before is None else "unchanged"  # still running: the deploy waits for it

    async def _dry_run(self, manifests: Sequence[Manifest]) -> list[dict[str, Any]]:
        objects = []
        for m in manifests:
            live = await self.cluster.get(m["apiVersion"], m["kind"], m["metadata"]["name"])
            dry = await self.cluster.apply(m, dry_run=True)
            changes = diff_object(live, dry)
            objects.append({"object": str(applyset.ObjectRef.of(m)), "action": "create" if live is None else
                            ("update" if changes else "unchanged"),
                            "changes": [c.to_json() for c in changes] if live is not None else []})
        return objects

    async def plan_rollback(self, inp_of: Callable[[str], ReleaseInput], to: str | None) -> dict[str, Any]:
        """``rollback --plan``: the recorded release's objects, dry-run against the live ones."""
        await self.cluster.check()
        probe = inp_of("")
        await rollouts.require_argo_for(self.cluster, probe)
        env = await records.read_env(self.cluster, probe.base)
        rec = await self._rollback_record(probe, env, to)
        inp = replace(inp_of(rec.release), slot=rec.slot)
        steps = plan_steps(inp, rec.manifests, None)[:-2]  # no prune, no new record
        return {"kind": "rollback", "env": inp.env.name, "release": rec.release, "serving": env.current,
                "namespace": self.cluster.namespace, "steps": steps,
                "objects": await self._dry_run(rec.manifests), "prune": []}

    async def _rollback_record(self, probe: ReleaseInput, env: records.EnvRecord,
                               to: str | None) -> records.ReleaseRecord:
        target = to or env.previous
        if not target:
            raise NotFound(f"{probe.env.name} has no previous release to roll back to")
        rec = await records.record(self.cluster, probe.base, target)
        if rec is None:
            raise NotFound(f"release {target} has no record in namespace {self.cluster.namespace} "
                           "(only the last keep_releases releases are kept)")
        for ref in rec.references:
            if ref.group_kind == "Secret" and await self.cluster.get("v1", "Secret", ref.name) is None:
                raise NotFound(f"release {target}'s Secret {ref.name} is gone; deploy instead")
        return rec

    # --- deploy -----------------------------------------------------------------------------------------
    async def deploy(self, inp: ReleaseInput) -> KubeResult:
        await self.cluster.check()
        await rollouts.require_argo_for(self.cluster, inp)
        env = await records.read_env(self.cluster, inp.base)
        inp = with_slot(inp, env)
        res = KubeResult(inp.env.name, inp.release, "deploy", previous=env.current)
        manifests = self._members(inp, env)
        first, switch = split_switch(inp, manifests)
        commands = list(inp.env.release if inp.env.release is not None else inp.app.release)
        job = release_job(inp, commands, inp.app.release_timeout)
        if job is not None:
            try:  # nothing else is applied before it succeeded, so there is nothing to restore either
                await run_release_job(self.cluster, self.clock, self.emit, job, res.steps, self.poll)
            except DeployFailed as err:
                res.reason = str(err)
                return res
        try:
            await self._apply_all(inp, env, first, res, current=inp.release, previous=env.current)
            await self._wait_rollout(inp, res)
            await self._switch(switch, res)
        except DeployFailed as err:
            res.reason = str(err)
            if env.current and env.current != inp.release:
                await self._restore(inp, env, res)
            return res
        await self._record(inp, manifests, res)
        res.pruned = [str(r) for r in await self._prune(inp, env, manifests)]
        res.steps.append({"kind": "prune", "status": "succeeded", "deleted": res.pruned})
        res.outcome = "succeeded"
        return res

    # --- rollback ---------------------------------------------------------------------------------------
    async def rollback(self, inp_of: Callable[[str], ReleaseInput], to: str | None) -> KubeResult:
        await self.cluster.check()
        probe = inp_of("")
        await rollouts.require_argo_for(self.cluster, probe)
        env = await records.read_env(self.cluster, probe.base)
        rec = await self._rollback_record(probe, env, to)
        target = rec.release
        res = KubeResult(probe.env.name, target, "rollback", previous=env.current)
        inp = replace(inp_of(target), slot=rec.slot)
        first, switch = split_switch(inp, rec.manifests)
        try:
            await self._apply_all(inp, env, first, res, current=target, previous=env.current)
            await self._wait_rollout(inp, res)
            await self._switch(switch, res)
        except DeployFailed as err:
            res.reason = str(err)
            return res
        res.outcome = "succeeded"
        return res

    # --- pieces -----------------------------------------------------------------------------------------
    def _members(self, inp: ReleaseInput, env: records.EnvRecord) -> list[Manifest]:
        set_id = applyset.applyset_id(records.parent_name(inp.base), self.cluster.namespace)
        objects = rollouts.render_objects(inp, env.current) if inp.env.strategy == "canary" else render(inp)
        return applyset.label_members(objects, set_id)

    async def _apply_all(self, inp: ReleaseInput, env: records.EnvRecord, manifests: Sequence[Manifest],
                         res: KubeResult, *, current: str, previous: str | None) -> None:
        t0 = self.clock.monotonic()
        # The parent first, listing every kind it may hold, so an interrupted apply leaves nothing unfindable.
        await self.cluster.apply(applyset.parent(env.name, self.cluster.namespace, manifests, current, previous,
                                                 {*env.kinds, "Service"}, slot=inp.slot))
        applied = []
        for m in manifests:
            await self.cluster.apply(m)
            applied.append(str(applyset.ObjectRef.of(m)))
            self.emit(f"applied {applied[-1]}")
        res.steps.append({"kind": "apply", "status": "succeeded", "objects": applied,
                          "duration_s": round(self.clock.monotonic() - t0, 3)})

    async def _switch(self, services: Sequence[Manifest], res: KubeResult) -> None:
        """Blue-green: the Service now selects the new slot (its pods are available)."""
        for m in services:
            await self.cluster.apply(m)
            slot = m["spec"]["selector"].get("shipyard.dev/slot")
            self.emit(f"switched Service {m['metadata']['name']} to slot {slot}")
            res.steps.append({"kind": "switch", "status": "succeeded", "service": m["metadata"]["name"], "slot": slot})

    async def _wait_rollout(self, inp: ReleaseInput, res: KubeResult) -> None:
        if inp.env.strategy == "canary":  # Argo Rollouts runs the steps: its Rollout's status is read back
            return await rollouts.wait_step(self.cluster, inp, self.clock, self.emit, res.steps, self.poll)
        t0 = self.clock.monotonic()
        deadline = t0 + inp.env.deploy_timeout + 30  # the controller judges the progress deadline; this is a backstop
        last = ""
        while True:
            dep = await self.cluster.get("apps/v1", "Deployment", inp.deployment_name)
            if dep is None:
                raise DeployFailed(f"deployment {inp.deployment_name} disappeared during the rollout")
            st = rollout_status(dep, inp.env.kube.autoscale.min if inp.env.kube.autoscale else 0)
            if st.message != last:
                self.emit(st.message)
                last = st.message
            if st.done:
                res.steps.append({"kind": "wait_rollout", "status": "succeeded", "message": st.message,
                                  "duration_s": round(self.clock.monotonic() - t0, 3)})
                return
            if st.failed or self.clock.monotonic() > deadline:
                why = await self._why(inp)
                message = st.message if st.failed else f"rollout not done after {inp.env.deploy_timeout:.0f}s: {st.message}"
                res.steps.append({"kind": "wait_rollout", "status": "failed", "message": message, "pods": why,
                                  "duration_s": round(self.clock.monotonic() - t0, 3)})
                raise DeployFailed(message + ("; " + "; ".join(why) if why else ""))
            await self.clock.sleep(self.poll)

    async def _why(self, inp: ReleaseInput) -> list[str]:
        pods = await self.cluster.objects("v1", "Pod", labels={**selector_labels(inp), RELEASE_LABEL: inp.release[:63]})
        names = {p["metadata"]["name"] for p in pods}
        return pod_reasons(pods, await self.cluster.pod_events(names))

    async def _restore(self, inp: ReleaseInput, before: records.EnvRecord, res: KubeResult) -> None:
        """After a failed rollout: the serving release's objects applied back (its pods never stopped)."""
        serving = before.current
        assert serving is not None
        rec = await records.record(self.cluster, inp.base, serving)
        if rec is None:
            res.steps.append({"kind": "restore", "status": "skipped", "reason": f"no record of {serving}"})
            return
        await self._apply_all(replace(inp, slot=rec.slot), before, list(rec.manifests),
                              KubeResult(res.env, serving, "restore"), current=serving, previous=before.previous)
        res.steps.append({"kind": "restore", "status": "succeeded", "release": serving})

    async def _record(self, inp: ReleaseInput, manifests: Sequence[Manifest], res: KubeResult) -> None:
        rec = records.ReleaseRecord(inp.release, inp.image_ref, self.clock.time(),
                                    tuple(m for m in manifests if m["kind"] != "Secret"))
        await self.cluster.apply(records.record_manifest(inp.base, self.cluster.namespace, rec))
        kept = (await records.records(self.cluster, inp.base))
        for old in kept[inp.env.keep_releases:]:
            await self.cluster.delete("v1", "ConfigMap", records.record_name(inp.base, old.release))
        res.steps.append({"kind": "record", "status": "succeeded", "release": inp.release})

    async def _prune_list(self, inp: ReleaseInput, env: records.EnvRecord,
                          manifests: Sequence[Manifest]) -> list[applyset.ObjectRef]:
        set_id = applyset.applyset_id(records.parent_name(inp.base), self.cluster.namespace)
        keep = {applyset.ObjectRef.of(m) for m in manifests}
        for rec in (await records.records(self.cluster, inp.base))[: inp.env.keep_releases]:
            keep |= rec.references
        live: list[applyset.ObjectRef] = []
        for gk in sorted(set(env.kinds) | {applyset.group_kind(m) for m in manifests}):
            api = version_of(gk)
            kind = gk.split(".")[0]
            for obj in await self.cluster.objects(api, kind, labels={applyset.PART_OF: set_id}):
                live.append(applyset.ObjectRef(gk, obj["metadata"]["name"]))
        return applyset.prune_list(live, keep)

    async def _prune(self, inp: ReleaseInput, env: records.EnvRecord,
                     manifests: Sequence[Manifest]) -> list[applyset.ObjectRef]:
        gone = await self._prune_list(inp, env, manifests)
        for ref in gone:
            await self.cluster.delete(version_of(ref.group_kind), ref.group_kind.split(".")[0], ref.name)
            self.emit(f"pruned {ref}")
        return gone


def masked(manifests: Sequence[Manifest]) -> list[Manifest]:
    return [mask_secret(m) for m in manifests]
