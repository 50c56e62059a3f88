"""A canary environment's objects, pure: an Argo Rollouts ``Rollout`` (argoproj.io/v1alpha1) in place of the
Deployment, and the ``AnalysisTemplate`` objects that judge it (engine/kube/canary_analysis.py).

The Rollout carries the Deployment's pod template, selector, replica count and history limit unchanged
(so the content-hashed ConfigMap and Secret work as for Deployments), and a basic canary strategy — no
traffic router: Argo sets a weight by scaling the canary's ReplicaSet against the stable one behind the one
Service. ``canary.steps`` map as the local canary reads them (engine/rollout/canary.py ``expand``):

- the short form ``[10, 50, 100]``: ``setWeight: 10``, ``pause: {duration: step_duration}``, …, ``setWeight: 100``
- ``{ weight = N }`` → ``setWeight``; ``{ pause = "1m" }`` → ``pause: {duration: 60s}``; ``{ pause = {} }``
  → ``pause: {}`` (until ``shipyard promote``); ``{ analysis = "x" }`` → an ``analysis`` step running the
  template ``<base>-x`` for that analysis' duration.

The judgement and the ``[rollback]`` triggers run as background analysis from the first weight on; a failed
measurement aborts the rollout (the stable ReplicaSet keeps serving). ``rollbackWindow`` lets a rollback to
one of the last ``keep_releases`` releases skip the steps, as a local rollback is immediate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.engine.kube import canary_analysis
from shipyard.engine.kube.render import Manifest, ReleaseInput, common_labels, render
from shipyard.primitives.spec.rollout import AnalysisStep, CanarySpec, PauseStep, WeightStep

API_VERSION = canary_analysis.API_VERSION
KIND = "Rollout"


def _pause(seconds: float | None) -> dict[str, Any]:
    return {"pause": {} if seconds is None else {"duration": f"{max(1, round(seconds))}s"}}


def canary_steps(spec: CanarySpec, base: str, args: list[dict[str, str]]) -> list[dict[str, Any]]:
    """``canary.steps`` as Argo canary steps; ``args`` name the canary and stable release."""
    out: list[dict[str, Any]] = []
    for item in spec.steps:
        if isinstance(item, int):  # short form: every weight below 100 is baked for step_duration
            out.append({"setWeight": item})
            if item < 100:
                out.append(_pause(spec.step_duration))
        elif isinstance(item, WeightStep):
            out.append({"setWeight": item.weight})
        elif isinstance(item, PauseStep):
            out.append(_pause(item.pause))
        elif isinstance(item, AnalysisStep):
            out.append({"analysis": {"templates": [{"templateName": step_template_name(base, item.analysis)}],
                                     "args": args}})
    return out


def background_template_name(base: str) -> str:
    return f"{base}-canary"


def step_template_name(base: str, analysis: str) -> str:
    return f"{base}-analysis-{analysis.lower().replace('_', '-')}"[:63].rstrip("-")


def _args(canary: str, stable: str) -> list[dict[str, str]]:
    return [{"name": "canary", "value": canary}, {"name": "stable", "value": stable}]


def _first_weight(steps: Sequence[dict[str, Any]]) -> int:
    return next(i for i, s in enumerate(steps) if "setWeight" in s)


def rollout(inp: ReleaseInput, deployment: Manifest, stable: str) -> Manifest:
    """The Rollout for ``deployment`` (as ``render`` wrote it); ``stable`` is the serving release (the
    canary's own id on a first deploy, when Argo goes straight to 100 %)."""
    spec = inp.env.canary or CanarySpec()
    dep = deployment["spec"]
    steps = canary_steps(spec, inp.base, _args(inp.release, stable))
    canary: dict[str, Any] = {
        "maxSurge": dep["strategy"]["rollingUpdate"]["maxSurge"],
        "maxUnavailable": dep["strategy"]["rollingUpdate"]["maxUnavailable"],
        "steps": steps,
        "analysis": {"templates": [{"templateName": background_template_name(inp.base)}],
                     "args": _args(inp.release, stable),
                     # From the first weight: before it the canary has no pods to judge.
                     "startingStep": _first_weight(steps) + 1},
    }
    out_spec: dict[str, Any] = {
        "selector": dep["selector"], "template": dep["template"],
        "revisionHistoryLimit": dep["revisionHistoryLimit"],
        "progressDeadlineSeconds": dep["progressDeadlineSeconds"],
        "progressDeadlineAbort": True,  # past the deadline the stable ReplicaSet takes everything back
        "rollbackWindow": {"revisions": inp.env.keep_releases},
        "strategy": {"canary": canary},
    }
    if "replicas" in dep:
        out_spec["replicas"] = dep["replicas"]
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": deployment["metadata"], "spec": out_spec}


def templates(inp: ReleaseInput, address: str) -> list[Manifest]:
    """The background template and one per named analysis that a step uses."""
    spec = inp.env.canary or CanarySpec()
    ns, labels, env = inp.env.kube.namespace, common_labels(inp), inp.env.name
    out = [canary_analysis.template(background_template_name(inp.base), ns, labels,
                                    canary_analysis.background_template(spec, inp.env.rollback, env, address))]
    named = sorted({s.analysis for s in spec.steps if isinstance(s, AnalysisStep)})
    for name in named:
        out.append(canary_analysis.template(step_template_name(inp.base, name), ns, labels,
                                            canary_analysis.step_template(spec, name, env, address)))
    return out


def render_canary(inp: ReleaseInput, stable: str | None, address: str) -> list[Manifest]:
    """Every object of a canary release, in apply order: the templates before the Rollout that names them;
    the autoscaler scales the Rollout."""
    out: list[Manifest] = []
    for m in render(inp):
        if m["kind"] == "Deployment":
            out += templates(inp, address)
            out.append(rollout(inp, m, stable or inp.release))
        elif m["kind"] == "HorizontalPodAutoscaler":
            target = {"apiVersion": API_VERSION, "kind": KIND, "name": inp.deployment_name}
            out.append({**m, "spec": {**m["spec"], "scaleTargetRef": target}})
        else:
            out.append(m)
    return out
