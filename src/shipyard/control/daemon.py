"""The control plane (``shipyard up``): the one place where its parts are built and wired.

It owns no request traffic: the router (its own process, own session) keeps serving its last table
if this process dies, and instances run in their own sessions. ``ControlPlane`` builds every
collaborator once and hands each one exactly what it uses (as kopf's ``spawn_tasks`` does); nothing
below reaches back up to it. On start it re-adopts what is still running and restores one consistent
routing table per environment.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import psutil

from shipyard.control import logsetup
from shipyard.control.access.gate import Gatekeeper
from shipyard.control.access.identities import TokenBook
from shipyard.control.access.limiter import FailureLimiter
from shipyard.control.access.routes import AccessContext
from shipyard.control.accessories import Accessories
from shipyard.control.alerts import Evaluator
from shipyard.control.api import ApiContext, build_routes, remote_routes
from shipyard.control.backups import BackupService, start_scheduler
from shipyard.control.certs import CertExpiry
from shipyard.control.cgroups import Cgroups
from shipyard.control.collector import LiveTraffic
from shipyard.control.dashboard.actions import Actions
from shipyard.control.dashboard.calls import ApiCalls
from shipyard.control.dashboard.server import Dashboard, DashboardContext
from shipyard.control.dashboard.views import Views
from shipyard.control.deploys.adopt import adopt, router_restarted
from shipyard.control.deploys.approvals import ApprovalBook
from shipyard.control.deploys.oneoff import OneOffs
from shipyard.control.deploys.registry import Registry
from shipyard.control.deploys.service import DeployService
from shipyard.control.events import EventLog
from shipyard.control.faces_api import FacesContext
from shipyard.control.httpserver import ApiServer
from shipyard.control.instances import InstanceFactory
from shipyard.control.jobs import JobService, serving_place
from shipyard.control.logretention import PRUNE_EVERY_S, prune_aged
from shipyard.control.maintenance import MaintenanceService
from shipyard.control.metrics_api import MetricsContext
from shipyard.control.metrics_export import MetricsExporter, MetricsServer, RouterCounters
from shipyard.control.metrics_recorder import Recorder, supervisor_readings
from shipyard.control.notices import Notice, Notices, receiver_details
from shipyard.control.notify import Notifier
from shipyard.control.notify_api import NotifyContext
from shipyard.control.notify_outbox import Outbox
from shipyard.control.paths import Paths
from shipyard.control.pendingaudit import import_pending
from shipyard.control.releases import ReleaseService
from shipyard.control.reports import ReportScheduler, ReportService
from shipyard.control.routerlink import RouterLink
from shipyard.control.specsource import SpecSource
from shipyard.control.specwatch import SpecWatch
from shipyard.control.statuspage.checks import CheckRunner
from shipyard.control.statuspage.process import StatusPageProcess, status_dir
from shipyard.control.statuspage.writer import StatusWriter
from shipyard.control.supervisor import Supervisor
from shipyard.control.target import Targets
from shipyard.control.tasks import guarded
from shipyard.control.tlsconfig import RemoteListener, remote_listener
from shipyard.control.token import ensure_token
from shipyard.control.websessions import WebSessions
from shipyard.engine.releases import remove_leftovers
from shipyard.errors import BadInput, Refused, ShipyardError
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.logs import LogsSpec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import open_store

log = logging.getLogger("shipyard.control")


class ControlPlane:
    def __init__(self, project: Path) -> None:
        self.paths = paths = Paths(project.resolve())
        paths.ensure()
        self.clock = clock = SystemClock()
        self.store = store = open_store(None, paths.state)
        self.secrets = secrets = SecretStore(paths.state)
        self.specs = SpecSource(paths.project)
        self.events = events = EventLog(store, clock)
        self.link = link = RouterLink(paths, clock)
        self.registry = Registry()
        # Targets need the supervisor and the supervisor reports to the targets: the callback closes the loop.
        self.targets: Targets
        # CPU and memory are read every second: rollback triggers and the canary's crash check use them.
        self.supervisor = Supervisor(clock=clock, on_change=lambda st: self.targets.on_instance_change(st),
                                     on_event=lambda env, kind, msg, data: events.add(env, kind, msg, data),
                                     sample_interval=1.0, cgroups=Cgroups(paths.state))
        self.accessories = Accessories(paths.state / "accessories", clock)
        self.targets = Targets(supervisor=self.supervisor, link=link,
                               instances=InstanceFactory(paths, secrets, self.accessories),
                               store=store, events=events, clock=clock)
        self.releases = ReleaseService(paths, store, clock)
        # Notifications (docs/alerts.md): the evaluator, deploys and backups route through one notifier.
        self.spec_watch = watch = SpecWatch(paths.project)
        self.notifier = notifier = Notifier(store=store, clock=clock, specs=watch)
        self.outbox = Outbox(store=store, clock=clock, specs=watch, secrets=secrets)
        notifier.on_delivery = self.outbox.poke
        self.deploys = DeployService(specs=self.specs, paths=paths, store=store, secrets=secrets, clock=clock,
                                     events=events, targets=self.targets, releases=self.releases,
                                     registry=self.registry, notify=notifier.lifecycle)
        self.approvals = ApprovalBook(deploys=self.deploys, store=store, clock=clock, events=events,
                                      registry=self.registry)
        self.backups = BackupService(store=store, secrets=secrets, paths=paths, load_spec=self.specs.load,
                                     clock=clock, notify=notifier.lifecycle)
        self.deploys.backup_run = self.backups.run  # backup.before_deploy
        # Metrics, history and alerts (docs/alerts.md): always on; the background tasks read the spec when it changes.
        counters = RouterCounters()
        self.certs = CertExpiry()
        self.evaluator = Evaluator(store=store, clock=clock, specs=watch, notifier=notifier, certs=self.certs,
                                   live=LiveTraffic(link, clock))
        self.recorder = Recorder(link=link, store=store, clock=clock, specs=watch,
                                 readings=supervisor_readings(self.supervisor), on_reply=counters.add_reply,
                                 on_tick=self.evaluator.wake.set)
        self.metrics_server = MetricsServer(MetricsExporter(
            counters=counters, link=link, supervisor=self.supervisor, store=store,
            alerts=lambda: [v.to_json() for v in self.evaluator.view()],
            certs=lambda: self.certs.by_env(spec) if (spec := watch.current()) is not None else {}).render)
        self.jobs = JobService(store=store, events=events, clock=clock, where=serving_place(self.targets, store),
                               logs=paths.state / "logs", notify=notifier.lifecycle)
        # Faces (docs/status-page.md): the status page's files, its process, checks, maintenance, reports.
        # Receivers (notifications) connect to `self.notices.hooks`.
        self.notices = Notices(lambda env, kind, msg, data: events.add(env, kind, msg, data))
        self.notices.hooks.append(self._notice_out)
        self.checks = CheckRunner(store=store, clock=clock, spec=watch.current, on_change=lambda: self.status.wake.set())
        self.status = StatusWriter(store=store, clock=clock, spec=watch.current, out=status_dir(paths),
                                   critical_firing=self.evaluator.critical_firing, check_failing=self.checks.failing)
        self.status_process = StatusPageProcess(paths, clock)
        self.maintenance = MaintenanceService(store=store, clock=clock, link=link, notices=self.notices,
                                              on_change=self.status.wake.set)
        self.reports = ReportService(store=store, clock=clock, out=paths.state / "reports")
        self.report_schedule = ReportScheduler(service=self.reports, spec=watch.current, notify=self._report_notice)
        self.stopping = asyncio.Event()
        self.stop_everything = False

    def _notice_out(self, n: Notice) -> None:
        """Notices (maintenance, incidents, reports) go to the receivers through the routes too."""
        self.notifier.event(n.env, "notice", n.subject, receiver_details(n))

    def _report_notice(self, env: str, subject: str, body: str, data: dict[str, Any]) -> None:
        self.notices.send(Notice("report", env, subject, body, self.clock.time(), data))

    def _status_url(self) -> str | None:
        port = self.status_process.port
        return None if port is None else f"http://127.0.0.1:{port}/"

    def stop(self, everything: bool) -> None:
        self.stop_everything = everything
        self.stopping.set()

    async def serve(self, port: int = 0, ready_fd: int | None = None, remote: RemoteListener | None = None) -> None:
        token = ensure_token(self.paths.token)
        remove_leftovers(self.paths.state)  # builds cut short by a crash
        await self.link.ensure_running()
        spec = None
        try:
            spec = self.specs.load()
        except ShipyardError as err:
            log.warning("cannot read the spec while re-adopting: %s", err)
        logs = spec.logs if spec is not None else LogsSpec()
        self.supervisor.configure_logs(logs.max_size, logs.keep, also=[self.paths.daemon_log],
                                       timestamps=logs.timestamps)
        await self._start_accessories(spec)  # before instances start: their URLs are in the config
        await adopt(store=self.store, targets=self.targets, supervisor=self.supervisor, events=self.events,
                    clock=self.clock, spec=spec)
        kept, ended = self.approvals.restore()  # what waited for approval waits on, if its plan is the same
        if kept or ended:
            log.info("approvals: %d deployment(s) wait again, %d interrupted", len(kept), len(ended))
        imported = import_pending(self.paths.state, self.store)  # secrets changed while it was down
        if imported:
            log.info("audit: %d row(s) written while the control plane was down imported", imported)
        keeper = guarded(self.link.keep_running(self._router_restarted), "router-keeper")
        scheduler = start_scheduler(self.backups)
        sched_task = asyncio.create_task(scheduler.run_forever()) if scheduler else None
        # [jobs] as the spec says at `up` (docs/processes.md).
        jobs_task = guarded(self.jobs.schedule(spec).run_forever(), "job-scheduler") if spec and spec.jobs else None
        observers = [guarded(self.recorder.run_forever(), "history-recorder"),
                     guarded(self.evaluator.run_forever(), "alert-evaluator"),
                     guarded(self.approvals.expire_forever(), "approval-timeouts"),
                     guarded(self.outbox.run_forever(), "notify-outbox"),
                     guarded(self._prune_logs(logs.max_age), "log-retention"),
                     guarded(self.status.run_forever(), "status-page-writer"),
                     guarded(self.checks.run_forever(), "status-page-checks"),
                     guarded(self.maintenance.run_forever(), "maintenance"),
                     guarded(self.report_schedule.run_forever(), "scheduled-reports"),
                     guarded(self.status_process.keep_running(self.spec_watch.current), "status-page")]
        listen = spec.metrics.address if spec is not None else ("127.0.0.1", 9420)
        metrics_port = await self.metrics_server.start(*listen) if listen is not None else None
        tokens = TokenBook(self.store, self.clock, token)
        sessions: WebSessions[Any] = WebSessions(self.clock)
        dash_port = 0  # set below: the dashboard starts once the routes it calls exist

        def dashboard_link(who: Any) -> str:
            return f"http://127.0.0.1:{dash_port}/login?code={sessions.new_code(who)}"
        access = AccessContext(store=self.store, clock=self.clock, tokens=tokens, secrets=self.secrets,
                               approvals=self.approvals, load_spec=self.specs.load)
        gate = Gatekeeper(tokens, FailureLimiter(self.clock))  # one gate: failures count across listeners
        routes = build_routes(ApiContext(
            project=self.paths.project, paths=self.paths, clock=self.clock, backups=self.backups, specs=self.specs, deploys=self.deploys, registry=self.registry,
            targets=self.targets, store=self.store, events=self.events, stop=self.stop,
            approvals=self.approvals, access=access,
            oneoffs=OneOffs(paths=self.paths, store=self.store, targets=self.targets, events=self.events),
            metrics=MetricsContext(self.store, self.clock, self.specs.load, self.evaluator,
                                   self.deploys.secrets.names),
            notify=NotifyContext(self.store, self.clock, self.specs.load, self.notifier, self.secrets),
            jobs=self.jobs, accessories=self.accessories,
            faces=FacesContext(store=self.store, clock=self.clock, load_spec=self.specs.load,
                               maintenance=self.maintenance, notices=self.notices, reports=self.reports,
                               changed=self.status.wake.set, status_url=self._status_url,
                               dashboard_link=dashboard_link)))
        # The dashboard calls the very routes the CLI does, through the same gate (control/dashboard/calls.py).
        calls = ApiCalls(gate, routes)
        dashboard = Dashboard(DashboardContext(
            sessions=sessions, tokens=tokens, clock=self.clock, actions=Actions(calls),
            environments=lambda: sorted(getattr(self.spec_watch.current(), "environments", {})),
            views=Views(calls=calls, store=self.store, registry=self.registry, clock=self.clock,
                        load_spec=self.specs.load)))
        dash_port = await dashboard.start("127.0.0.1", 0)
        server = ApiServer(gate, routes)
        api_port = await server.start("127.0.0.1", port)
        # The local CLI keeps the loopback listener; `[control] listen` adds one for remote clients.
        remote_doc = None
        remote_server = ApiServer(gate, remote_routes(routes))
        if remote is not None:
            remote_port = await remote_server.start(remote.host, remote.port, remote.tls)
            remote_doc = {"host": remote.host, "port": remote_port, "scheme": remote.scheme}
            log.info("control API for remote clients on %s://%s:%d", remote.scheme, remote.host, remote_port)
        tmp = self.paths.control.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "create_time": psutil.Process().create_time(),
                                   "port": api_port, "started_at": self.clock.time(),
                                   "project": str(self.paths.project), "metrics_port": metrics_port,
                                   "listen": remote_doc, "dashboard_port": dash_port}))
        os.replace(tmp, self.paths.control)
        log.info("control plane ready on 127.0.0.1:%d", api_port)
        if ready_fd is not None:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.stopping.wait()
        keeper.cancel()
        for task in observers:
            task.cancel()
        await self.metrics_server.close()
        await dashboard.close()
        await server.close()
        await remote_server.close()
        if jobs_task is not None:
            jobs_task.cancel()
        await self.jobs.close()
        if scheduler is not None and sched_task is not None:
            sched_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await scheduler.aclose()
        await self.shutdown()

    async def _start_accessories(self, spec: Spec | None) -> None:
        for env in spec.environments.values() if spec is not None else []:
            if env.accessories:
                try:
                    await self.accessories.start(env.name, dict(env.accessories))
                except ShipyardError as err:
                    self.events.add(env.name, "accessory_failed", f"accessories of {env.name}: {err}")

    async def _router_restarted(self, why: str) -> None:
        await router_restarted(why, store=self.store, targets=self.targets, registry=self.registry,
                               events=self.events, clock=self.clock)

    async def _prune_logs(self, max_age: float) -> None:
        """``[logs] max_age``: old rotated copies and dead instances' logs go (control/logretention.py)."""
        while True:
            gone = await asyncio.to_thread(prune_aged, self.paths.state / "logs", max_age, self.clock.time(),
                                           self.supervisor.log_paths())
            if gone:
                log.info("log retention: deleted %d files older than %.0f h", len(gone), max_age / 3600)
            await self.clock.sleep(PRUNE_EVERY_S)

    async def shutdown(self) -> None:
        # Watches first: instances going away must not look like a bad release.
        self.deploys.watches.stop_all()
        for task in self.registry.busy_tasks():
            task.cancel()
        self.targets.close()
        if self.stop_everything:
            # `shipyard down`: take every environment out of the router, stop instances, stop the router.
            statuses = self.supervisor.all()
            await asyncio.gather(*(self.supervisor.stop(s.id) for s in statuses), return_exceptions=True)
            for s in statuses:
                self.store.delete_instance(s.id)
            await self.link.shutdown()
            await self.accessories.stop_all()  # their data stays for the next `up`
            await self.status_process.stop()
        await self.supervisor.close(stop_instances=False)
        with contextlib.suppress(FileNotFoundError):
            self.paths.control.unlink()
        self.store.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="shipyard-control")
    ap.add_argument("--project", required=True)
    ap.add_argument("--port", default="0")
    ap.add_argument("--ready-fd", type=int, default=None)
    args = ap.parse_args(argv)
    # Everything the control plane writes under .shipyard/ (state.db, control.json, router.json, logs and
    # their rotated copies) is for the project's user alone; the router and instances inherit this too.
    os.umask(0o077)
    try:
        # Checked before anything starts (the router above all): a bad port leaves nothing behind.
        port = check_api_port(args.port)
        logsetup.configure(logging.INFO)  # JSON lines with the ids of what they are about
        remote = _remote_listener(Path(args.project))
        asyncio.run(_serve(Path(args.project), port, args.ready_fd, remote))
    except ShipyardError as err:
        print(f"error: {err}", file=sys.stderr)
        if args.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(args.ready_fd, f"error: {err}\n".encode())
        raise SystemExit(err.exit_code) from None


def check_api_port(text: str) -> int:
    """The control API's port from ``--port``: 0 (any free one) or a free port in 1..65535."""
    try:
        port = int(text)
    except ValueError:
        raise BadInput(f"--port: expected a port number (0-65535), got {text[:20]!r}") from None
    if not 0 <= port <= 65535:
        raise BadInput(f"--port: must be between 0 (any free port) and 65535, got {port}")
    if port:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's listener will
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                raise BadInput(f"--port: 127.0.0.1:{port} is not available ({exc.strerror})") from None
    return port


def _remote_listener(project: Path) -> RemoteListener | None:
    """``[control] listen`` checked (address free, certificate and key readable) before anything starts."""
    try:
        spec = SpecSource(project.resolve()).load()
    except ShipyardError as err:  # `shipyard up` refuses a bad spec first; started by hand, say so and go on
        log.warning("no remote listener: cannot read the spec (%s)", err)
        return None
    return remote_listener(spec.control, spec.project_dir)


async def _serve(project: Path, port: int, ready_fd: int | None, remote: RemoteListener | None = None) -> None:
    paths = Paths(project.resolve())
    paths.ensure()
    lock = _one_control_plane(paths)
    if lock is None:
        # Another `shipyard up` won the race: it is the project's control plane; this one leaves quietly.
        if ready_fd is not None:
            os.write(ready_fd, b"already running\n")
            os.close(ready_fd)
        raise Refused(f"the control plane is already running for {paths.project}")
    try:
        # Built inside the loop: asyncio primitives bind to the running loop.
        await ControlPlane(project).serve(port, ready_fd, remote)
    finally:
        os.close(lock)


def _one_control_plane(paths: Paths) -> int | None:
    """Hold ``run/control.lock`` for the process's lifetime; None when another process holds it."""
    fd = os.open(paths.control_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


if __name__ == "__main__":
    main()
