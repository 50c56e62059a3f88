"""Process types, resource limits, scheduled jobs and dev accessories (docs/processes.md).

    [processes]                      web = "gunicorn …", worker = "celery … worker"   (`[app] run` = web)
    [environments.X.processes.T]     replicas, stop = { signal, grace }, check
    [environments.X.resources]       T = { memory = "512Mi", cpu = "0.5" }
    [jobs.NAME]                      schedule (cron), command, timeout, concurrency, envs
    [environments.X.accessories]     NAME = { kind = "postgres" | "redis" | "command", … }

The models here check one table each; ``check_process_names`` and ``check_jobs`` cross-check the names
an environment or a job uses against the process types and environments that exist.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictInt, field_validator

from shipyard.primitives.spec.base import MAX_LIST, MAX_REPLICAS, MAX_TABLE, SpecModel, duration_upto
from shipyard.primitives.spec.durations import DAY
from shipyard.primitives.spec.sizes import Size

WEB = "web"
PROCESS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")
MAX_CPU = 1024.0
# Below this a process cannot even start an interpreter; 4 MiB is what the kernel itself accepts easily.
MIN_MEMORY = 4 * 1024 * 1024

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def check_process_name(name: str) -> str:
    if not PROCESS_NAME.match(name):
        raise ValueError(f"process type names are lowercase identifiers (a-z, 0-9, '-', '_'), got {name!r}")
    return name


class StopSpec(SpecModel):
    signal: str = "SIGTERM"
    grace: Annotated[float, duration_upto(DAY)] = 30.0

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        name = value.strip().upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        if name not in signal.Signals.__members__ or name in {"SIGKILL", "SIGSTOP"}:
            raise ValueError(f"expected a signal name like 'SIGTERM' or 'SIGINT', got {value!r}")
        return name


def _cpu(value: Any) -> Any:
    # "0.5", 0.5 and "500m" (Kubernetes' millicores) all mean half a core.
    if isinstance(value, bool):
        raise ValueError(f"expected a number of cores like 0.5, '0.5' or '500m', got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            raise ValueError(f"expected a number of cores like 0.5, '0.5' or '500m', got {value!r}") from None
    return value


class ResourceSpec(SpecModel):
    """``{ memory = "512Mi", cpu = "0.5" }`` for one process type: per instance, enforced with cgroups."""

    memory: Annotated[Size | None, Field(ge=MIN_MEMORY, le=2**50)] = None
    cpu: Annotated[float | None, BeforeValidator(_cpu), Field(gt=0, le=MAX_CPU)] = None

    @field_validator("memory", mode="before")
    @classmethod
    def _kube_units(cls, value: Any) -> Any:
        # Kubernetes writes "512Mi"/"1Gi"; sizes.py reads "512MiB"/"1GiB".
        if isinstance(value, str) and value.strip()[-2:] in ("Ki", "Mi", "Gi"):
            return value.strip() + "B"
        return value


class ProcessDef(SpecModel):
    """One entry of ``[processes]``: a command, or a table with its command and a ``check`` command."""

    run: Annotated[str, Field(min_length=1)]
    check: str | None = None  # exit 0 = healthy, for a process type that is not routed


def _process_def(value: Any) -> Any:
    return {"run": value} if isinstance(value, str) else value


ProcessEntry = Annotated[ProcessDef, BeforeValidator(_process_def)]


class ProcessEnvSpec(SpecModel):
    """``[environments.X.processes.T]``: how many instances of a type run there and how they stop."""

    replicas: Annotated[StrictInt, Field(ge=0, le=MAX_REPLICAS)] | None = None
    stop: StopSpec | None = None
    check: str | None = None
    surge: bool = True  # a deploy starts the new instances before stopping the old (false: stop first)


Concurrency = Literal["forbid", "allow", "replace"]


class JobSpec(SpecModel):
    """``[jobs.NAME]``: a command run on a cron schedule in the serving release (Kubernetes CronJob's meaning
    of ``concurrency``)."""

    schedule: Annotated[str, Field(min_length=1)]
    command: Annotated[str, Field(min_length=1)]
    timeout: Annotated[float, duration_upto(DAY), Field(gt=0)] = 3600.0
    concurrency: Concurrency = "forbid"
    envs: Annotated[list[str], Field(max_length=MAX_LIST)] = []
    stop: StopSpec = StopSpec(grace=10.0)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"expected a cron expression like '0 3 * * *', got {value!r}")
        return value


AccessoryKind = Literal["postgres", "redis", "command"]


class AccessorySpec(SpecModel):
    """``{ kind = "postgres" }``: a local service beside a (dev) environment, its URL put in the config."""

    kind: AccessoryKind
    port: Annotated[StrictInt, Field(ge=0, le=65535)] = 0  # 0: a free port, kept across restarts
    command: str | None = None  # kind = "command": run with $PORT and $DATA_DIR set
    ready: str | None = None    # kind = "command": a command that exits 0 once it serves
    url: str | None = None      # kind = "command": the URL to inject ({port} is replaced)
    var: str | None = None      # the variable set (default DATABASE_URL / REDIS_URL / <NAME>_URL)

    @field_validator("var")
    @classmethod
    def _var(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError(f"{value!r} is not a valid environment variable name")
        return value


ProcessTable = Annotated[dict[Annotated[str, BeforeValidator(check_process_name)], ProcessEntry],
                         Field(max_length=MAX_TABLE)]


JOB_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


def check_job_name(name: str) -> str:
    if not JOB_NAME.match(name):
        raise ValueError(f"job names are lowercase identifiers (a-z, 0-9, '-', '_'), got {name!r}")
    return name


JobTable = Annotated[dict[Annotated[str, BeforeValidator(check_job_name)], JobSpec], Field(max_length=MAX_TABLE)]


class ProcessesFile(SpecModel):
    """The ``[processes]`` and ``[jobs]`` sections of the file."""

    processes: ProcessTable = {}
    jobs: JobTable = {}


def process_types(processes: Mapping[str, ProcessDef], app_run: str | None) -> list[str]:
    """The process types of a release: ``web`` (from ``[processes]`` or ``[app] run``) then the rest."""
    names = [n for n in processes if n != WEB]
    return ([WEB] if WEB in processes or app_run else []) + sorted(names)


def check_process_names(env: str, types: Iterable[str], overrides: Mapping[str, Any],
                        resources: Mapping[str, Any]) -> list[Problem]:
    """An environment may only tune and limit process types that exist."""
    known = list(types)
    found: list[Problem] = []
    for section, table in (("processes", overrides), ("resources", resources)):
        for name in table:
            if name not in known:
                found.append((("environments", env, section, name),
                              f"unknown process type {name!r} (known: {', '.join(known) or 'none'})"))
    return found


def check_jobs(jobs: Mapping[str, JobSpec], envs: Iterable[str]) -> list[Problem]:
    known = sorted(envs)
    found: list[Problem] = []
    for name, job in jobs.items():
        for i, env in enumerate(job.envs):
            if env not in known:
                found.append((("jobs", name, "envs", i), f"unknown environment {env!r} (known: {', '.join(known)})"))
    return found
