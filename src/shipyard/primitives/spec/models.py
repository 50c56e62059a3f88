"""The shape of shipyard.toml: the app, per-environment settings, and the resolved spec.

``[defaults]`` and every ``[environments.NAME]`` share one set of keys (``EnvSettings``); an environment
is ``[defaults]`` deep-merged with its own table, validated once, then frozen as an ``EnvSpec``
(loading.py does the merge so that errors can name the table a bad value came from).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, field_validator

from shipyard.errors import NotFound
from shipyard.primitives.spec.alerting import AlertSpec, MetricsSpec
from shipyard.primitives.spec.approval import ApprovalSpec
from shipyard.primitives.spec.backup import BackupSpec
from shipyard.primitives.spec.base import (
    MAX_LIST,
    MAX_REPLICAS,
    MAX_TABLE,
    Duration,
    SpecModel,
    duration_upto,
)
from shipyard.primitives.spec.control import ControlSpec
from shipyard.primitives.spec.durations import DAY
from shipyard.primitives.spec.faces import ReportsSpec, StatusPageSpec
from shipyard.primitives.spec.kubernetes import KubernetesSpec
from shipyard.primitives.spec.logs import LogsSpec
from shipyard.primitives.spec.notifications import NotificationsSpec
from shipyard.primitives.spec.pipeline import Commands, CommandTimeout, HooksSpec, PromotionSpec, WindowsSpec
from shipyard.primitives.spec.processes import (
    AccessorySpec,
    JobTable,
    ProcessEnvSpec,
    ProcessTable,
    ResourceSpec,
    StopSpec,
)
from shipyard.primitives.spec.rollout import CanarySpec, RollbackSpec
from shipyard.primitives.spec.router import RouterEnvSpec
from shipyard.primitives.spec.verify import VerifySpec

ENV_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Set by the supervisor for every instance; a config value would be silently overridden.
RESERVED_VARS = frozenset({"PORT"})
RESERVED_PREFIX = "SHIPYARD_"

Strategy = Literal["rolling", "blue-green", "canary"]


def check_env_name(name: str) -> str:
    if not ENV_NAME.match(name):
        raise ValueError(
            f"environment names are lowercase identifiers (a-z, 0-9, '-', '_', starting with a letter), got {name!r}"
        )
    return name


def check_var_name(name: str) -> str:
    """An environment-variable name a user may set (config env tables, .env files, secrets)."""
    if not VAR_NAME.match(name):
        raise ValueError(f"{name!r} is not a valid environment variable name (letters, digits and '_')")
    if name in RESERVED_VARS or name.startswith(RESERVED_PREFIX):
        raise ValueError(f"{name!r} is set by shipyard for every instance and cannot be configured")
    return name


def _env_value(value: Any) -> Any:
    # TOML/YAML give typed scalars; an environment only holds strings, so write them the way a shell would.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL byte")
    return value


VarName = Annotated[str, AfterValidator(check_var_name)]
EnvValue = Annotated[str, BeforeValidator(_env_value), AfterValidator(_no_nul)]
EnvTable = Annotated[dict[VarName, EnvValue], Field(max_length=MAX_TABLE)]
PositiveDuration = Annotated[Duration, Field(gt=0)]
# A deploy holds its environment's lock and a drain holds a deploy: a day is the most either may take.
DayDuration = Annotated[float, duration_upto(DAY)]
# Probe periods and timeouts: an hour is already far longer than any sensible probe.
ProbeDuration = Annotated[float, duration_upto(3600.0), Field(gt=0)]
NonEmptyStr = Annotated[str, Field(min_length=1)]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ProbeSpec(SpecModel):
    """An HTTP probe; defaults follow Kubernetes' probes."""

    path: NonEmptyStr
    interval: ProbeDuration = 10.0
    timeout: ProbeDuration = 1.0
    retries: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    start_period: DayDuration = 0.0

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value


def _inside(raw: str) -> str:
    p = PurePosixPath(raw)
    if p.is_absolute() or ".." in p.parts or str(p) in {".", ""}:
        raise ValueError(f"must be a path inside the release (relative, no '..'), got {raw!r}")
    return str(p)


InsidePath = Annotated[NonEmptyStr, AfterValidator(_inside)]


class BuildCacheSpec(SpecModel):
    """``{ path = ".venv", key = ["requirements.txt"] }``: reuse ``path`` from an earlier build whose ``key``
    files had the same contents (engine/releases/cache.py)."""

    path: InsidePath
    key: Annotated[list[InsidePath], BeforeValidator(_one_or_many), Field(min_length=1)]


class AppSpec(SpecModel):
    name: str
    run: NonEmptyStr | None = None  # the web process' command (or `[processes] web`)
    build: Annotated[list[NonEmptyStr], BeforeValidator(_one_or_many), Field(max_length=MAX_LIST)] = []
    shared: Annotated[list[NonEmptyStr], BeforeValidator(_one_or_many), Field(max_length=MAX_LIST)] = []
    build_cache: Annotated[list[BuildCacheSpec], Field(max_length=MAX_LIST)] = []
    health: ProbeSpec
    ready: ProbeSpec | None = None
    stop: StopSpec = StopSpec()
    release: Commands = []  # the release command (migrations), see spec/pipeline.py
    release_timeout: CommandTimeout = 300.0

    @field_validator("name")
    @classmethod
    def _app_name(cls, value: str) -> str:
        if not APP_NAME.match(value):
            raise ValueError(f"expected letters, digits, '.', '_' or '-' (at most 63), got {value!r}")
        return value

    @field_validator("shared")
    @classmethod
    def _relative_dirs(cls, dirs: list[str]) -> list[str]:
        seen: set[str] = set()
        for raw in dirs:
            p = PurePosixPath(raw)
            if p.is_absolute() or ".." in p.parts or str(p) in {".", ""}:
                raise ValueError(f"shared dirs are paths inside the release (relative, no '..'), got {raw!r}")
            if str(p) in seen:
                raise ValueError(f"{raw!r} is listed twice")
            seen.add(str(p))
        return [str(PurePosixPath(d)) for d in dirs]


def _toggle(value: Any) -> Any:
    # `verify = true` means "with the default settings"; `false` switches a section off (also one from [defaults]).
    if value is True:
        return {}
    if value is False:
        return None
    return value


def _toggle_off_only(value: Any) -> Any:
    return None if value is False else value


Port = Annotated[StrictInt, Field(ge=1, le=65535)]


class EnvSettings(SpecModel):
    """The keys of ``[defaults]`` and ``[environments.NAME]``; validated after the two are merged."""

    port: Port
    replicas: Annotated[StrictInt, Field(ge=1, le=MAX_REPLICAS)] = 1
    strategy: Strategy = "rolling"
    keep_releases: Annotated[StrictInt, Field(ge=1, le=100)] = 5
    env: EnvTable = {}
    max_surge: Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)] = 1
    max_unavailable: Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)] = 0
    drain_timeout: DayDuration = 30.0
    scale_down_delay: Duration = 300.0
    deploy_timeout: Annotated[DayDuration, Field(gt=0)] = 300.0
    watch: Duration = 3600.0
    canary: Annotated[CanarySpec | None, BeforeValidator(_toggle)] = None
    rollback: Annotated[RollbackSpec | None, BeforeValidator(_toggle)] = None
    verify: Annotated[VerifySpec | None, BeforeValidator(_toggle)] = None
    backup: Annotated[BackupSpec | None, BeforeValidator(_toggle_off_only)] = None
    router: RouterEnvSpec = RouterEnvSpec()
    release: Commands | None = None  # overrides [app] release here; "" skips it
    windows: WindowsSpec | None = None  # deploy windows and freezes (spec/pipeline.py)
    promotion: PromotionSpec | None = None  # which releases it takes (spec/pipeline.py)
    approval: ApprovalSpec | None = None  # deploys wait for approvals (spec/approval.py)
    # Process types, limits and accessories (spec/processes.py, docs/processes.md).
    processes: Annotated[dict[str, ProcessEnvSpec], Field(max_length=MAX_TABLE)] = {}
    resources: Annotated[dict[str, ResourceSpec], Field(max_length=MAX_TABLE)] = {}
    accessories: Annotated[dict[str, AccessorySpec], Field(max_length=MAX_TABLE)] = {}
    target: Literal["local", "kubernetes"] = "local"  # where it runs (docs/kubernetes.md)
    kubernetes: KubernetesSpec | None = None  # [environments.NAME.kubernetes] (spec/kubernetes.py)


class EnvSpec(EnvSettings):
    """One environment, resolved: ``[defaults]`` merged with ``[environments.NAME]``."""

    name: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kube(self) -> KubernetesSpec:
        """The environment's [kubernetes] table (its defaults when absent)."""
        return self.kubernetes or KubernetesSpec()


class Spec(SpecModel):
    """A loaded shipyard.toml: the app and its resolved environments."""

    app: AppSpec
    environments: dict[str, EnvSpec]
    path: Path
    hooks: HooksSpec = HooksSpec()
    metrics: MetricsSpec = MetricsSpec()
    alerts: tuple[AlertSpec, ...] = ()
    control: ControlSpec = ControlSpec()  # the remote listener (spec/control.py)
    notifications: NotificationsSpec = NotificationsSpec()
    logs: LogsSpec = LogsSpec()
    processes: ProcessTable = {}
    jobs: JobTable = {}
    status_page: StatusPageSpec | None = None  # spec/faces.py
    reports: ReportsSpec = ReportsSpec()

    @property
    def project_dir(self) -> Path:
        return self.path.parent

    @property
    def env_names(self) -> list[str]:
        return sorted(self.environments)

    def env(self, name: str) -> EnvSpec:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(self.env_names) or "none"
            raise NotFound(f"unknown environment {name!r} (known: {known})") from None


# The sections of the file itself; [defaults] and environments stay raw here so they can be merged first.
class SpecFile(SpecModel):
    app: AppSpec
    hooks: HooksSpec = HooksSpec()
    defaults: dict[str, Any] = {}
    environments: dict[str, dict[str, Any]]
