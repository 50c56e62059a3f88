"""``shipyard run`` on a kubernetes environment: the one-off command's Job applied (field manager
shipyard), its pod's log streamed while the Job runs, its end read back, the Job deleted.

The log is followed from the moment the container started; once the Job has ended the stream is given
``grace`` seconds to end by itself (a kubelet closes it when the container exits), then it is stopped and
whatever it had not delivered yet is read in one request (the lines after those already printed), so no
line is lost or printed twice either way. Deleting the Job (propagation Background) deletes its pod; an
interrupt (Ctrl-C) deletes it too before it is passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.control.kube import records
from shipyard.control.kube.cluster import Cluster
from shipyard.control.kube.podlogs import PodLine, pod_lines
from shipyard.engine.kube.render import Manifest
from shipyard.engine.kube.run_job import RunVerdict, container_state, has_output, job_name_label, verdict
from shipyard.engine.kube.status import pod_reasons
from shipyard.errors import BadInput, NotFound
from shipyard.primitives.clock import Clock

Write = Callable[[str], None]


async def release_template(cluster: Cluster, base: str, env: str, release: str | None
                           ) -> tuple[str, list[Manifest]]:
    """The release to run in (``release``, else the serving one) and the objects its record holds."""
    target = release or (await records.read_env(cluster, base)).current
    if not target:
        raise NotFound(f"nothing serves in {env} yet (namespace {cluster.namespace}): deploy first, "
                       "or give --release ID")
    rec = await records.record(cluster, base, target)
    if rec is None:
        raise NotFound(f"release {target} has no record in namespace {cluster.namespace} (only the last "
                       "keep_releases releases are kept; see 'shipyard history')")
    for ref in sorted(rec.references, key=str):  # else the pod would wait for it until the deadline
        if await cluster.get("v1", ref.group_kind, ref.name) is None:
            raise NotFound(f"release {target}'s {ref.group_kind} {ref.name} is gone from namespace "
                           f"{cluster.namespace}; run in the serving release, or deploy {target} again")
    return target, list(rec.manifests)


@dataclass
class RunResult:
    job: str
    pod: str | None = None
    exit_code: int = 1
    reason: str | None = None
    lines: int = 0
    kept: bool = False
    interrupted: bool = False
    pods: list[str] = field(default_factory=list)  # the pod's reasons when it failed without an exit code

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "pod": self.pod, "exit_code": self.exit_code, "reason": self.reason,
                "lines": self.lines, "kept": self.kept, "pod_reasons": self.pods}


class JobRun:
    def __init__(self, cluster: Cluster, clock: Clock, write: Write, emit: Write, *, poll: float = 0.25,
                 grace: float = 1.0) -> None:
        self.cluster, self.clock, self.write, self.emit = cluster, clock, write, emit
        self.poll, self.grace = poll, grace

    async def run(self, job: Manifest, *, keep: bool = False) -> RunResult:
        name = job["metadata"]["name"]
        res = RunResult(name, kept=keep)
        await self.cluster.apply(job)
        self.emit(f"job {name} created in namespace {self.cluster.namespace}")
        try:
            await self._watch(job, res)
        except asyncio.CancelledError:
            res.interrupted = True
            raise
        finally:
            if not keep:
                # Shielded: an interrupt cancels the run, never this delete.
                await asyncio.shield(self.cluster.delete("batch/v1", "Job", name))
                self.emit(f"job {name} deleted" + (" (interrupted)" if res.interrupted else ""))
        return res

    async def _watch(self, job: Manifest, res: RunResult) -> None:
        name = job["metadata"]["name"]
        deadline = self.clock.monotonic() + float(job["spec"]["activeDeadlineSeconds"]) + 30
        stream: asyncio.Task[None] | None = None
        pod: dict[str, Any] | None = None
        shown: str | None = None
        try:
            while True:
                obj = await self.cluster.get("batch/v1", "Job", name)
                pod = await self._pod(name) or pod
                if pod is not None and res.pod is None:
                    res.pod = pod["metadata"]["name"]
                known = container_state(pod)
                waiting = known.reason if known.state == "waiting" else None
                if waiting and waiting != shown:  # ContainerCreating, ImagePullBackOff…: said once each
                    self.emit(f"pod {res.pod}: waiting ({waiting})")
                shown = waiting or shown
                if stream is None and has_output(pod):
                    stream = asyncio.create_task(self._stream(res, follow=container_state(pod).state == "running"))
                v = verdict(obj, pod)
                if v.done:
                    break
                if self.clock.monotonic() > deadline:  # a backstop: the Job controller enforces the deadline
                    v = RunVerdict(True, 1, f"not finished {job['spec']['activeDeadlineSeconds']}s after it started")
                    break
                await self.clock.sleep(self.poll)
            await self._drain(res, stream, pod)
        finally:
            if stream is not None and not stream.done():
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stream
        res.exit_code, res.reason = v.exit_code, v.reason
        if v.reason and pod is not None and container_state(pod).exit_code is None:
            res.pods = pod_reasons([pod], await self.cluster.pod_events({pod["metadata"]["name"]}))

    async def _pod(self, job: str) -> dict[str, Any] | None:
        pods = await self.cluster.objects("v1", "Pod", labels=job_name_label(job))
        # backoffLimit 0: one pod (a second only if the first was lost); the newest speaks.
        return max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "") if pods else None

    async def _stream(self, res: RunResult, *, follow: bool) -> None:
        assert res.pod is not None
        async for line in pod_lines(self.cluster, res.pod, follow=follow):
            self._print(res, line)

    def _print(self, res: RunResult, line: PodLine) -> None:
        self.write(line.text)
        res.lines += 1

    async def _drain(self, res: RunResult, stream: asyncio.Task[None] | None, pod: dict[str, Any] | None) -> None:
        """The Job has ended: the rest of the log, each line once."""
        if stream is not None:
            done, _ = await asyncio.wait({stream}, timeout=self.grace)
            if stream in done and stream.exception() is None:
                return  # the stream ended with the container: it delivered everything
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await stream
        if res.pod is None or not has_output(await self.cluster.get("v1", "Pod", res.pod) or pod):
            return
        with contextlib.suppress(BadInput):  # the pod is gone (its deadline passed): no log to read
            k = 0
            async for line in pod_lines(self.cluster, res.pod):
                k += 1
                if k > res.lines:
                    self._print(res, line)
