"""Canary environments on Kubernetes through Argo Rollouts, thin: is it installed, wait on a Rollout's
status, and drive it (promote / abort / pause / resume) with the patches ``kubectl argo rollouts`` sends.

The judgement is Argo's (its AnalysisRuns query Prometheus, engine/kube/canary_analysis.py); shipyard reads
the Rollout's status back and reports it — Degraded or aborted is a failed deploy, with Argo's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx2
from lightkube import ApiError
from lightkube.generic_resource import create_namespaced_resource

from shipyard.control.kube.cluster import Cluster
from shipyard.engine.kube.render import Manifest, ReleaseInput
from shipyard.engine.kube.rollout import API_VERSION, KIND, render_canary
from shipyard.engine.kube.rollout_status import CanaryProgress, Command, patches, rollout_phase
from shipyard.errors import BadInput, DeployFailed, NotFound, Refused, ShipyardError
from shipyard.primitives.clock import Clock

GROUP, VERSION = API_VERSION.split("/")
# Registered once: lightkube then loads, applies and lists these kinds like built-in ones.
create_namespaced_resource(GROUP, VERSION, "Rollout", "rollouts")
create_namespaced_resource(GROUP, VERSION, "AnalysisTemplate", "analysistemplates")
create_namespaced_resource(GROUP, VERSION, "AnalysisRun", "analysisruns")

INSTALL = ("install Argo Rollouts' CRDs and controller: kubectl create namespace argo-rollouts && kubectl apply -n "
           "argo-rollouts -f https://github.com/argoproj/argo-rollouts/releases/download/v1.8.5/install.yaml")
# How long a new spec may go unobserved before we say no controller is running.
OBSERVE_TIMEOUT = 60.0


async def require_argo(cluster: Cluster) -> None:
    """Refused (exit 3) when the cluster lacks the Rollout or AnalysisTemplate CRD, naming what to install."""
    for kind, plural in (("Rollout", "rollouts"), ("AnalysisTemplate", "analysistemplates")):
        missing = Refused(f"strategy = \"canary\" on kubernetes needs Argo Rollouts, and {cluster.server} has no "
                          f"{plural}.{GROUP} CRD: {INSTALL}")
        try:
            await cluster.objects(API_VERSION, kind)
        except httpx2.HTTPStatusError as exc:  # an unknown API group answers a plain-text 404, not a Status
            if exc.response.status_code == 404:
                raise missing from exc
            raise ShipyardError(f"listing {plural}.{GROUP}: HTTP {exc.response.status_code} from {cluster.server}") from exc
        except ShipyardError as exc:
            cause = exc.__cause__
            if isinstance(cause, ApiError) and cause.status.code == 404:
                raise missing from exc
            raise


async def progress(cluster: Cluster, name: str) -> CanaryProgress | None:
    ro = await cluster.get(API_VERSION, KIND, name)
    return rollout_phase(ro) if ro is not None else None


async def wait(cluster: Cluster, name: str, clock: Clock, emit: Callable[[str], None], timeout: float,
               poll: float = 0.5) -> tuple[CanaryProgress, float]:
    """Until the Rollout is Healthy (returned) or Degraded/aborted (DeployFailed with Argo's message). Time
    spent paused (a manual gate, ``shipyard pause``, an inconclusive analysis) does not count against
    ``timeout``: a human is expected there."""
    t0 = clock.monotonic()
    active, last, seen_at, observed = 0.0, "", t0, False
    while True:
        ro = await cluster.get(API_VERSION, KIND, name)
        if ro is None:
            raise DeployFailed(f"rollout {name} disappeared during the canary")
        st = rollout_phase(ro)
        line = st.describe()
        if line != last:
            emit(f"rollout {name}: {line}")
            last = line
        if st.message != "waiting for rollout spec update to be observed":
            observed = True
        if st.done:
            return st, clock.monotonic() - t0
        if st.failed:
            raise DeployFailed(f"rollout {name} {'aborted' if st.aborted else 'degraded'}: {st.message or st.phase}")
        now = clock.monotonic()
        if st.phase != "Paused":
            active += now - seen_at
        seen_at = now
        if not observed and now - t0 > OBSERVE_TIMEOUT:
            raise DeployFailed(f"rollout {name}: no controller observed its new spec within {OBSERVE_TIMEOUT:.0f}s "
                               "(is Argo Rollouts' controller running?)")
        if active > timeout:
            raise DeployFailed(f"rollout {name} not done after {timeout:.0f}s of progress: {line}")
        await clock.sleep(poll)


async def control(cluster: Cluster, name: str, command: Command) -> tuple[CanaryProgress, list[str]]:
    """Send ``command`` to the Rollout: the spec patch and/or the status-subresource patch it needs."""
    ro = await cluster.get(API_VERSION, KIND, name)
    if ro is None:
        raise NotFound(f"no rollout {name} in namespace {cluster.namespace}: deploy the canary environment first")
    p = patches(ro, command)
    sent: list[str] = []
    # Status first, as kubectl argo rollouts does: the controller then sees a consistent spec change.
    if p.status is not None:
        ro = await cluster.patch(API_VERSION, KIND, name, p.status, status=True, field_manager="shipyard-canary")
        sent.append(f"status {_short(p.status)}")
    if p.spec is not None:
        ro = await cluster.patch(API_VERSION, KIND, name, p.spec, field_manager="shipyard-canary")
        sent.append(f"spec {_short(p.spec)}")
    return rollout_phase(ro), sent


def _short(body: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for part in body.values() for k, v in part.items())


# --- what the deployer dispatches to for a canary environment ---------------------------------------------
def address(inp: ReleaseInput) -> str | None:
    return inp.env.kube.prometheus


def check_canary(inp: ReleaseInput) -> None:
    """A canary on Kubernetes is judged by Argo's analysis, from Prometheus: without one it is refused; an
    address with credentials too (it would be stored in the AnalysisTemplate, in clear)."""
    where = f"environments.{inp.env.name}"
    url = address(inp)
    if url is None:
        raise BadInput(f"{where}: a canary on kubernetes is judged by Argo Rollouts' analysis, which queries "
                       f"Prometheus: set [metrics] prometheus or {where}.kubernetes.prometheus (docs/kubernetes.md, "
                       "\"Canary\")")
    urls = [(f"{where}.kubernetes.prometheus (or [metrics] prometheus)", url)]
    urls += [(f"{where}.rollback.prometheus[{i}].url", p.url) for i, p in enumerate(getattr(inp.env.rollback, "prometheus", []))]
    for key, value in urls:
        if "@" in urlsplit(value).netloc:
            raise BadInput(f"{key}: an address with credentials would be stored in clear in the AnalysisTemplate; "
                           "give it without them (Argo's prometheus provider authenticates with its own settings)")


def render_objects(inp: ReleaseInput, stable: str | None) -> list[Manifest]:
    check_canary(inp)
    return render_canary(inp, stable if stable != inp.release else None, address(inp) or "")


async def require_argo_for(cluster: Cluster, inp: ReleaseInput) -> None:
    if inp.env.strategy == "canary":
        check_canary(inp)
        await require_argo(cluster)


async def wait_step(cluster: Cluster, inp: ReleaseInput, clock: Clock, emit: Callable[[str], None],
                    steps: list[dict[str, Any]], poll: float = 0.5) -> None:
    """The deployer's ``wait_rollout`` for a Rollout: its outcome appended to ``steps``."""
    t0 = clock.monotonic()
    name = inp.deployment_name
    try:
        st, _ = await wait(cluster, name, clock, emit, inp.env.deploy_timeout + 30, poll)
    except DeployFailed as err:
        last = await progress(cluster, name)
        steps.append({"kind": "wait_rollout", "status": "failed", "rollout": name, "message": str(err),
                      "argo": last.to_json() if last else None, "duration_s": round(clock.monotonic() - t0, 3)})
        raise
    steps.append({"kind": "wait_rollout", "status": "succeeded", "rollout": name, "message": st.describe(),
                  "argo": st.to_json(), "duration_s": round(clock.monotonic() - t0, 3)})
