"""What the supervisor needs to run one instance: its command, directory, environment, log and probes.

The directory is the release's, or — for a release with shared dirs — its work dir in the environment
(``engine.releases.instance_dir``: the release's files with the environment's shared dirs linked in),
made on the first start of that release there. The variables are built when a process starts, never
stored: the launch's (from the spec's env tables) → the ``.env.<env>`` file → the environment's secrets;
``instancespec.instance_environment`` puts them over the documented base.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shipyard.control.accessories import Accessories
from shipyard.control.instancespec import InstanceSpec, InstanceStatus
from shipyard.control.paths import Paths
from shipyard.engine.releases import instance_dir
from shipyard.engine.rollout.launch import CHECK_PROBE, Launch
from shipyard.primitives.spec.envvars import dotenv_path, read_dotenv
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store.records import InstanceRec


class InstanceFactory:
    def __init__(self, paths: Paths, secrets: SecretStore, accessories: Accessories | None = None) -> None:
        self.paths = paths
        self.secrets = secrets
        self.accessories = accessories

    def environment(self, env: str, launch: Launch) -> dict[str, str]:
        merged = dict(launch.env)
        # The environment's accessories' URLs (DATABASE_URL, REDIS_URL …); .env and secrets still win.
        merged.update(self.accessories.urls(env) if self.accessories is not None else {})
        merged.update(read_dotenv(dotenv_path(self.paths.project, env)))
        merged.update(self.secrets.values(env))
        return merged

    async def workdir(self, env: str, release: str) -> Path:
        """Where commands of ``release`` run in ``env`` (its instances' directory, made if need be)."""
        return await asyncio.to_thread(instance_dir, self.paths.state, env, release)

    async def prepare(self, env: str, release: str) -> None:
        """Make the release's work dir in ``env`` off the event loop (the first start of a release with
        shared dirs there: hard links of its tree, and the copy of an old shared dir on upgrade), so
        that ``spec`` then finds it ready."""
        await asyncio.to_thread(instance_dir, self.paths.state, env, release)

    def spec(self, env: str, release: str, index: int, iid: str, port: int, role: str,
             launch: Launch, process: str = "web") -> InstanceSpec:
        """An instance of one process type: web with the launch's probes; another type with its own
        command, stop and limits, probed by being alive (or its ``check``)."""
        p = launch.of(process)
        return InstanceSpec(
            id=iid, env=env, release=release, index=index, cmd=p.run,
            cwd=instance_dir(self.paths.state, env, release), env_vars=self.environment(env, launch), port=port,
            log_path=self.paths.instance_log(env, iid), stop_signal=p.stop_signal, stop_grace=p.stop_grace,
            health=launch.health if process == "web" else CHECK_PROBE,
            ready=launch.ready if process == "web" else None, role=role, limits=p.limits, process=process,
            check=p.check)


def instance_rec(status: InstanceStatus, role: str, now: float) -> InstanceRec:
    return InstanceRec(id=status.id, env=status.env, release=status.release, index=status.index,
                       port=status.port, pid=status.pid or 0, create_time=status.create_time or 0.0,
                       role=role, state=status.state, started_at=status.started_at or now,
                       restarts=status.restarts, process=status.process)
