"""The Kubernetes API, thin (lightkube): connect through a kubeconfig, server-side apply as field manager
``shipyard`` (optionally a server-side dry run), get, list, delete, events — with the API's failures turned
into shipyard's errors: a bad kubeconfig or unknown context is bad input (2), an unreachable server a
failure (1), a 403 not permitted (4), an apply conflict names the field manager that owns the field."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.codecs import from_dict
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource_registry import resource_registry
from lightkube.types import CascadeType, PatchType

from shipyard.errors import BadInput, NotPermitted, Refused, ShipyardError
from shipyard.primitives.spec.kubernetes import KubernetesSpec

FIELD_MANAGER = "shipyard"
# The API version shipyard writes each kind it manages with (the applyset parent lists group kinds only).
VERSIONS = {"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Pod": "v1", "Event": "v1",
            "Deployment.apps": "apps/v1", "ReplicaSet.apps": "apps/v1", "Job.batch": "batch/v1",
            "HorizontalPodAutoscaler.autoscaling": "autoscaling/v2", "PodDisruptionBudget.policy": "policy/v1",
            "NetworkPolicy.networking.k8s.io": "networking.k8s.io/v1", "Ingress.networking.k8s.io": "networking.k8s.io/v1",
            # Argo Rollouts' kinds (canary environments; control/kube/rollouts.py registers them with lightkube)
            "Rollout.argoproj.io": "argoproj.io/v1alpha1", "AnalysisTemplate.argoproj.io": "argoproj.io/v1alpha1"}
_MANAGER = re.compile(r'conflicts? with "([^"]+)"')


def kubeconfig_path(kube: KubernetesSpec, project_dir: Path) -> Path:
    if kube.kubeconfig:
        p = Path(os.path.expanduser(kube.kubeconfig))
        return p if p.is_absolute() else project_dir / p
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(env) if env else Path.home() / ".kube" / "config"


def load_config(kube: KubernetesSpec, project_dir: Path, env: str) -> Any:
    """The kubeconfig's context (``context`` or its current one); BadInput naming what is wrong."""
    where = f"environments.{env}.kubernetes"
    path = kubeconfig_path(kube, project_dir)
    if not path.is_file():
        raise BadInput(f"{where}: no kubeconfig at {path} (set kubeconfig = PATH there, or KUBECONFIG)")
    try:
        config = KubeConfig.from_file(path)
    except (ConfigError, OSError, ValueError) as exc:
        raise BadInput(f"{where}: kubeconfig {path} cannot be read: {exc}") from exc
    if kube.context is not None and kube.context not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise BadInput(f"{where}.context: unknown context {kube.context!r} in {path} (contexts: {known})")
    try:
        return config.get(context_name=kube.context)
    except ConfigError as exc:
        raise BadInput(f"{where}: {exc} ({path})") from exc


def version_of(group_kind: str) -> str:
    try:
        return VERSIONS[group_kind]
    except KeyError:
        raise ShipyardError(f"shipyard does not manage {group_kind} objects") from None


def _resource(api_version: str, kind: str) -> Any:
    try:
        return resource_registry.load(api_version, kind)
    except LoadResourceError as exc:
        raise ShipyardError(f"unknown Kubernetes kind {kind} ({api_version})") from exc


def _to_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class Cluster:
    """One environment's namespace on one cluster."""

    def __init__(self, config: Any, namespace: str, server: str) -> None:
        self.namespace, self.server = namespace, server
        self.client = AsyncClient(config, namespace=namespace, field_manager=FIELD_MANAGER,
                                  timeout=httpx2.Timeout(10.0), lazy=False)

    @classmethod
    def connect(cls, kube: KubernetesSpec, project_dir: Path, env: str) -> Cluster:
        config = load_config(kube, project_dir, env)
        return cls(config, kube.namespace, str(getattr(config.cluster, "server", "?")))

    async def close(self) -> None:
        await self.client.close()

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ApiError as exc:
            code, message = exc.status.code, exc.status.message or str(exc)
            if code == 403:
                raise NotPermitted(f"{what}: not permitted in namespace {self.namespace}: {message}") from exc
            if code == 409 and "conflict" in message.lower():
                owners = sorted(set(_MANAGER.findall(message))) or ["another field manager"]
                raise Refused(f"{what}: fields are owned by {', '.join(owners)} ({message}); "
                              "change them through that manager, or remove its ownership") from exc
            if code == 422 or code == 400:
                raise BadInput(f"{what}: the API server rejected it: {message}") from exc
            raise ShipyardError(f"{what}: {message} (HTTP {code})") from exc
        except httpx2.TransportError as exc:
            raise ShipyardError(f"cannot reach the Kubernetes API server at {self.server}: {exc or type(exc).__name__}") from exc

    async def check(self) -> None:
        """The API server answers and the namespace exists."""
        ns_res = _resource("v1", "Namespace")
        with self._errors(f"namespace {self.namespace}"):
            try:
                await self.client.get(ns_res, self.namespace)
            except ApiError as exc:
                if exc.status.code == 404:
                    raise BadInput(f"namespace {self.namespace} does not exist on {self.server}") from exc
                raise

    async def apply(self, manifest: Mapping[str, Any], *, dry_run: bool = False, force: bool = False) -> dict[str, Any]:
        what = f"{manifest['kind']} {manifest['metadata']['name']}"
        try:
            obj = from_dict(dict(manifest))
        except LoadResourceError as exc:
            raise ShipyardError(f"{what}: {exc}") from exc
        with self._errors(f"applying {what}"):
            target: Any = obj  # a namespaced resource (its namespace is in its metadata)
            out = await self.client.apply(target, dry_run=dry_run, force=force)
        return _to_dict(out)

    async def get(self, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
        with self._errors(f"reading {kind} {name}"):
            try:
                return _to_dict(await self.client.get(_resource(api_version, kind), name, namespace=self.namespace))
            except ApiError as exc:
                if exc.status.code == 404:
                    return None
                raise

    async def objects(self, api_version: str, kind: str, labels: Mapping[str, str] | None = None,
                   fields: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        out = []
        with self._errors(f"listing {kind}"):
            async for item in self._iter(api_version, kind, labels, fields):
                out.append(_to_dict(item))
        return out

    def _iter(self, api_version: str, kind: str, labels: Mapping[str, str] | None,
              fields: Mapping[str, str] | None) -> AsyncIterable[Any]:
        return self.client.list(_resource(api_version, kind), namespace=self.namespace,
                                labels=dict(labels) if labels else None, fields=dict(fields) if fields else None)

    async def patch(self, api_version: str, kind: str, name: str, body: Mapping[str, Any], *,
                    status: bool = False, field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """A JSON merge patch of the object (``status``: of its status subresource)."""
        res = _resource(api_version, kind)
        with self._errors(f"patching {kind} {name}"):
            out = await self.client.patch(res.Status if status else res, name, dict(body), namespace=self.namespace,
                                          patch_type=PatchType.MERGE, field_manager=field_manager)
        return _to_dict(out)

    async def delete(self, api_version: str, kind: str, name: str) -> None:
        with self._errors(f"deleting {kind} {name}"):
            try:
                await self.client.delete(_resource(api_version, kind), name, namespace=self.namespace,
                                         cascade=CascadeType.BACKGROUND)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise

    async def pod_events(self, names: set[str]) -> list[dict[str, Any]]:
        events = await self.objects("v1", "Event")
        return [e for e in events if (e.get("involvedObject") or {}).get("name") in names]
