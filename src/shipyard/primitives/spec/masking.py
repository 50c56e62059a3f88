"""What may be shown or stored about an environment's configuration: never a secret value.

- ``resolved_config``: for ``shipyard config show`` — every variable with its source, secrets as ``***``.
- ``spec_snapshot``: the resolved spec of one environment as JSON-able data (recorded with each release
  and deployment so a rollback restores code and config together; ``from_snapshot`` reads it back).
- ``deployment_config``: the snapshot plus the names (never values) of the dotenv variables and secrets,
  the secrets version and a digest of it all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from shipyard.primitives.spec.envvars import SOURCE_SECRET, dotenv_path, read_dotenv, resolve_with_sources
from shipyard.primitives.spec.models import AppSpec, EnvSpec, Spec

MASK = "***"


class SecretNames(Protocol):
    def names(self, env: str) -> list[str]: ...

    def version(self, env: str) -> int: ...


def spec_snapshot(spec: Spec, env_name: str) -> dict[str, Any]:
    env = spec.env(env_name)
    return {
        "app": spec.app.model_dump(mode="json"),
        "environment": env.model_dump(mode="json"),
    }


def from_snapshot(snapshot: Mapping[str, Any]) -> tuple[AppSpec, EnvSpec]:
    """The app and environment a snapshot recorded (a rollback deploys a release with its own config)."""
    return AppSpec.model_validate(snapshot["app"]), EnvSpec.model_validate(snapshot["environment"])


def config_digest(data: Mapping[str, Any]) -> str:
    """A stable digest of JSON-able data (key order does not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _secrets_part(secrets: SecretNames | None, env_name: str) -> dict[str, Any]:
    if secrets is None:
        return {"names": [], "version": 0}
    return {"names": sorted(secrets.names(env_name)), "version": secrets.version(env_name)}


def resolved_config(
    spec: Spec, env_name: str, secrets: SecretNames | None = None, project_dir: Path | None = None
) -> dict[str, Any]:
    """The configuration of ``env_name`` as ``config show`` prints it; secret values are ``***``.

    Secrets are never decrypted here: their names alone say which variables they override.
    """
    snapshot = spec_snapshot(spec, env_name)
    settings = {k: v for k, v in snapshot["environment"].items() if k not in ("env", "name")}
    variables = {
        k: {"value": v, "source": src}
        for k, (v, src) in sorted(resolve_with_sources(spec, env_name, None, project_dir).items())
    }
    secret_part = _secrets_part(secrets, env_name)
    for name in secret_part["names"]:
        variables[name] = {"value": MASK, "source": SOURCE_SECRET}
    return {
        "env": env_name,
        "file": str(spec.path),
        "url": spec.env(env_name).url,
        "app": snapshot["app"],
        "settings": settings,
        "variables": dict(sorted(variables.items())),
        "secrets": secret_part,
    }


def deployment_config(
    spec: Spec, env_name: str, secrets: SecretNames | None = None, project_dir: Path | None = None
) -> dict[str, Any]:
    """What a release/deployment records about its configuration: no secret or dotenv values."""
    project_dir = spec.project_dir if project_dir is None else project_dir
    path = dotenv_path(project_dir, env_name)
    dotenv = read_dotenv(path)
    record: dict[str, Any] = {
        "spec": spec_snapshot(spec, env_name),
        # dotenv files often hold credentials too, so only names and a digest of the values are kept.
        "dotenv": {"file": path.name, "names": sorted(dotenv), "digest": config_digest(dotenv)} if dotenv else None,
        "secrets": _secrets_part(secrets, env_name),
    }
    record["digest"] = config_digest(record)
    return record
