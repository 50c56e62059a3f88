"""The control plane (``shipyard up``): API, deploy engine, supervisor, router process, re-adoption.

It owns no request traffic: the router (its own process, own session) keeps serving its last table
if this process dies, and instances run in their own sessions. On start it re-adopts what is still
running from the state database and restores one consistent routing table per environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shipyard.control.backups import BackupService  # wiring (cli)
from shipyard.control.canary import CanaryRun
from shipyard.control.collector import Collector
from shipyard.control.launch import Launch
from shipyard.control.paths import Paths
from shipyard.control.runtime import EnvRuntime, instance_rec
from shipyard.control.supervisor import InstanceStatus, Supervisor
from shipyard.control.token import ensure_token
from shipyard.control.watch import Watch
from shipyard.errors import BadInput, DeployFailed, LockHeld, ShipyardError
from shipyard.primitives import process
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.routerproto import AsyncRouterClient, RouterError, RouterUnavailable
from shipyard.primitives.spec import load_spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

log = logging.getLogger("shipyard.control")


class Daemon:
    def __init__(self, project: Path) -> None:
        self.paths = Paths(project.resolve())
        self.paths.ensure()
        self.clock = SystemClock()
        self.store = open_store(None, self.paths.state)
        self.secrets = SecretStore(self.paths.state)
        # CPU and memory are read every second: rollback triggers and the canary's crash check use them.
        self.supervisor = Supervisor(clock=self.clock, on_change=self._on_instance_change,
                                     on_event=self._on_supervisor_event, sample_interval=1.0)
        self.envs: dict[str, EnvRuntime] = {}
        self.busy: dict[str, asyncio.Task[None]] = {}
        self.prune_protect: set[str] = set()
        self.router = AsyncRouterClient(str(self.paths.router_socket))
        self.stopping = asyncio.Event()
        self.stop_everything = False
        self._build_durations: list[float] = []
        self._push_tasks: dict[str, asyncio.Task[None]] = {}
        self.collectors: dict[str, Collector] = {}
        self.canaries: dict[str, CanaryRun] = {}
        self.watches: dict[str, Watch] = {}
        self.backups = BackupService(store=self.store, secrets=self.secrets, paths=self.paths,  # wiring (cli)
                                     load_spec=self.load_spec, clock=self.clock)  # wiring (cli)

    # -- spec, config, secrets -------------------------------------------------------------------
    def load_spec(self) -> Any:
        return load_spec(self._spec_file())

    def _spec_file(self) -> Path:
        for name in ("shipyard.toml", "shipyard.yaml", "shipyard.yml"):
            if (self.paths.project / name).exists():
                return self.paths.project / name
        raise BadInput(f"no shipyard.toml in {self.paths.project}")

    def instance_env(self, env: str, launch: Launch) -> dict[str, str]:
        from shipyard.primitives.spec.envvars import dotenv_path, read_dotenv

        merged = dict(launch.env)
        merged.update(read_dotenv(dotenv_path(self.paths.project, env)))
        merged.update(self.secrets.values(env))
        # Commands from the project's venv (gunicorn, uvicorn) resolve even when it is not activated.
        path = merged.get("PATH", os.environ.get("PATH", ""))
        merged["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"
        return merged

    def router_settings(self, envspec: Any) -> dict[str, Any]:
        settings: dict[str, Any] = envspec.router.table_settings(envspec.name)
        return settings

    # -- releases --------------------------------------------------------------------------------
    def release_dir(self, release: str) -> Path:
        return self.paths.state / "releases" / release

    def release_for_commit(self, sha: str) -> str | None:
        for rec in self.store.list_releases():
            if rec.commit == sha and rec.status == "ready" and self.release_dir(rec.id).is_dir():
                return str(rec.id)
        return None

    def new_release_id(self, commit: Any) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock.time()))
        rid = f"r{stamp}-{commit.short[:7]}"
        n = 1
        while self.store.get_release(rid) is not None or self.release_dir(rid).exists():
            n += 1
            rid = f"r{stamp}-{commit.short[:7]}-{n}"
        return rid

    async def build(self, release_id: str, ref: str, on_output: Callable[[str], None]) -> None:
        from shipyard.engine.releases import build_release
        from shipyard.primitives.spec.masking import spec_snapshot
        from shipyard.primitives.store.records import ReleaseRec

        spec = self.load_spec()
        loop = asyncio.get_running_loop()

        def out(line: str) -> None:
            loop.call_soon_threadsafe(on_output, line)

        built = await asyncio.to_thread(
            build_release, project_dir=self.paths.project, state_dir=self.paths.state, ref=ref,
            build_cmds=list(spec.app.build), shared=list(spec.app.shared), clock=self.clock,
            release_id=release_id, on_output=out)
        self._build_durations.append(built.build_duration_s)
        snapshot = {name: spec_snapshot(spec, name) for name in spec.environments}
        self.store.add_release(ReleaseRec(
            id=built.id, commit=built.commit.sha, ref=ref, message=built.commit.message,
            author=built.commit.author, created_at=self.clock.time(), build_duration_s=built.build_duration_s,
            content_hash=built.content_hash, spec=snapshot,
            # Per-environment secrets versions are in each deployment's record; here the newest one.
            secrets_version=max((self.secrets.version(e) for e in spec.environments), default=0),
            build_log=str(built.build_log), status="ready"))

    def build_estimate(self) -> float:
        if self._build_durations:
            return round(sum(self._build_durations) / len(self._build_durations), 2)
        recs = [r.build_duration_s for r in self.store.list_releases()[:5] if r.build_duration_s]
        return round(sum(recs) / len(recs), 2) if recs else 2.0

    def prune_releases(self) -> None:
        from shipyard.engine.releases import prune_releases

        try:
            keep_n = min(self.load_spec().env(e).keep_releases for e in self.load_spec().environments)
        except ShipyardError:
            return
        serving = set(self.prune_protect)
        for rt in self.envs.values():
            serving.update(s.release for s in rt.instances())
        for env in self.store.list_environments():
            serving.update(r for r in (env.current_release, env.previous_release) if r)
        ids = [r.id for r in self.store.list_releases()]
        removed = prune_releases(self.paths.state, serving, keep_n, ids)
        for rid in removed:
            self.store.delete_release(rid)

    async def verify_step(self, rt: EnvRuntime, release: str, preview: bool) -> dict[str, Any]:
        """Deploy step: load verification; no-go fails the deployment (which then rolls back)."""
        from shipyard.engine.verify.runner import run_verify

        envspec = self.load_spec().env(rt.name)
        port = rt.port
        if preview:
            # Before the switch the new release has no traffic share: load one of its instances directly.
            ready = rt.ready_ids(release)
            st = self.supervisor.status(ready[0]) if ready else None
            if st is None:
                raise DeployFailed(f"no ready instance of {release} to verify")
            port = st.port
        result = await run_verify(f"http://127.0.0.1:{port}", envspec.verify, project_dir=self.paths.project,
                                  clock=self.clock)
        summary: dict[str, Any] = result.to_json()
        detail = {"go": summary.get("go"), "rate_achieved": summary.get("rate_achieved"),
                  "latency_ms": summary.get("latency_ms"), "failed_rate": summary.get("failed_rate")}
        if not result.go:
            failed = [f"{t['metric']} {t['expr']} (observed {t['observed']})"
                      for t in summary.get("thresholds", []) if not t.get("ok")]
            raise DeployFailed("verify: no-go — " + "; ".join(failed))
        return detail

    # -- history helpers -------------------------------------------------------------------------
    def last_succeeded(self, env: str) -> Any:
        for dep in self.store.list_deployments(env, limit=50):
            if dep.status == "succeeded":
                return dep
        return None

    def previous_succeeded(self, env: str, current: str) -> str | None:
        for dep in self.store.list_deployments(env, limit=100):
            if dep.status == "succeeded" and dep.release != current:
                return str(dep.release)
        return None

    def launch_of(self, env: str, release: str) -> Launch | None:
        for dep in self.store.list_deployments(env, limit=100):
            if dep.release == release and dep.detail and dep.detail.get("launch"):
                return Launch.from_json(dep.detail["launch"])
        return None

    def check_not_busy(self, env: str) -> None:
        if env in self.busy:
            running = self.store.running_deployment(env)
            what = f"deployment {running.id} ({running.kind} of {running.release})" if running else "a deployment"
            raise LockHeld(f"{what} is already running on {env}; wait for it or check 'shipyard status'")

    # -- runtime ---------------------------------------------------------------------------------
    def runtime(self, env: str) -> EnvRuntime:
        rt = self.envs.get(env)
        if rt is None:
            rt = self.envs[env] = EnvRuntime(self, env)
            rec = self.store.get_environment(env)
            if rec is not None:
                rt.restore_routing(rec.routing)
        return rt

    def event(self, env: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        log.info("%s: %s", env, message)
        self.store.add_event(env, kind, message, data=data, at=self.clock.time())

    def record_instance(self, status: InstanceStatus, role: str) -> None:
        self.store.upsert_instance(instance_rec(status, role, self.clock.time()))

    def _on_instance_change(self, status: InstanceStatus) -> None:
        rt = self.envs.get(status.env)
        if status.state == "stopped":
            return
        self.record_instance(status, rt.roles.get(status.release, "stable") if rt else "stable")
        if rt is None or rt.port is None:
            return
        # Readiness flips must reach the router promptly; coalesce bursts into one push.
        task = self._push_tasks.get(status.env)
        if task is None or task.done():
            self._push_tasks[status.env] = asyncio.get_running_loop().create_task(self._push_soon(rt))

    async def _push_soon(self, rt: EnvRuntime) -> None:
        await asyncio.sleep(0)
        try:
            await rt.push()
        except ShipyardError as err:
            log.warning("router update for %s failed: %s", rt.name, err)

    def _on_supervisor_event(self, env: str, kind: str, message: str, data: dict[str, Any]) -> None:
        self.event(env, kind, message, data)

    # -- router ----------------------------------------------------------------------------------
    async def router_call(self, op: str, _timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """One control-socket request; a refusal comes back as ``{"ok": False, "error": ...}``."""
        try:
            reply: dict[str, Any] = await self.router.call(op, timeout=_timeout, fields=fields)
        except RouterUnavailable as exc:
            raise ShipyardError(f"the router is not answering ({op}): {exc}") from exc
        except RouterError as exc:
            return {"ok": False, "error": str(exc)}
        except (TimeoutError, OSError) as exc:
            raise ShipyardError(f"the router is not answering ({op}): {exc}") from exc
        return {"ok": True, **reply}

    async def check_port(self, env: str, port: int) -> None:
        """Refuse early (exit 2) when the environment's port is taken by something other than our router."""
        rt = self.envs.get(env)
        if rt is not None and rt.port == port:
            return  # our router already listens there
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise BadInput(f"port {port} for {env} is in use by another program ({exc.strerror}); "
                               f"free it or change environments.{env}.port") from exc

    async def inflight(self, env: str, ids: set[str]) -> int:
        reply = await self.router_call("stats", env=env, window_s=1)
        total = 0
        for rel in (reply.get("releases") or {}).values():
            for iid, inst in (rel.get("instances") or {}).items():
                if iid in ids:
                    total += int(inst.get("inflight", 0))
        return total

    async def ensure_router(self) -> None:
        info: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            info = json.loads(self.paths.router_pid.read_text())
        if info and process.is_alive(int(info["pid"]), float(info["create_time"])):
            with contextlib.suppress(Exception):
                await self.router.call("ping", timeout=3)
                return
        with contextlib.suppress(FileNotFoundError):
            self.paths.router_socket.unlink()
        handle = process.spawn([sys.executable, "-m", "shipyard.router", "--socket", str(self.paths.router_socket),
                                "--log-dir", str(self.paths.router_logs)],
                               cwd=self.paths.state, env=dict(os.environ),
                               log_path=self.paths.router_logs / "router.log")
        self.paths.router_pid.write_text(json.dumps({"pid": handle.pid, "create_time": handle.create_time}))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                await self.router.call("ping", timeout=1)
                return
            await asyncio.sleep(0.05)
        raise ShipyardError(f"the router did not start; see {self.paths.router_logs / 'router.log'}")

    # -- lifecycle -------------------------------------------------------------------------------
    async def serve(self, port: int = 0, ready_fd: int | None = None) -> None:
        from shipyard.control.adopt import adopt
        from shipyard.control.api import build_routes
        from shipyard.control.httpserver import ApiServer
        from shipyard.engine.releases import remove_leftovers

        token = ensure_token(self.paths.token)
        remove_leftovers(self.paths.state)  # builds cut short by a crash
        await self.ensure_router()
        await adopt(self)
        from shipyard.control.backups import start_scheduler

        scheduler = start_scheduler(self.backups)  # wiring (cli)
        sched_task = asyncio.create_task(scheduler.run_forever()) if scheduler else None
        server = ApiServer(token, build_routes(self))
        api_port = await server.start("127.0.0.1", port)
        tmp = self.paths.control.with_suffix(".tmp")
        import psutil

        tmp.write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                   "port": api_port, "started_at": self.clock.time(),
                                   "project": str(self.paths.project)}))
        os.replace(tmp, self.paths.control)
        log.info("control plane ready on 127.0.0.1:%d", api_port)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        await server.close()
        if scheduler is not None and sched_task is not None:
            sched_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await scheduler.aclose()
        await self.shutdown()

    async def shutdown(self) -> None:
        # Watches first: instances going away must not look like a bad release.
        for w in list(self.watches.values()):
            if w.task is not None:
                w.task.cancel()
        for task in list(self.busy.values()):
            task.cancel()
        for rt in self.envs.values():
            for t in list(rt.warm_tasks.values()):
                t.cancel()
        if self.stop_everything:
            # `shipyard down`: take every environment out of the router, stop instances, stop the router.
            statuses = self.supervisor.all()
            await asyncio.gather(*(self.supervisor.stop(s.id) for s in statuses), return_exceptions=True)
            for s in statuses:
                self.store.delete_instance(s.id)
            with contextlib.suppress(Exception):
                await self.router.call("shutdown", timeout=5)
        await self.supervisor.close(stop_instances=False)
        with contextlib.suppress(FileNotFoundError):
            self.paths.control.unlink()
        self.store.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="shipyard-control")
    ap.add_argument("--project", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-fd", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        daemon = Daemon(Path(args.project))
        asyncio.run(daemon.serve(args.port, args.ready_fd))
    except ShipyardError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None


if __name__ == "__main__":
    main()
