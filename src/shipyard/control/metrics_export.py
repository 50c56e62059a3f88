"""Prometheus text for the router's series and the control plane's own, served on ``[metrics] listen``.

Router series are counted here from the same ``slices`` replies the history recorder pulls (the router's
own admin endpoint stays off): ``http_requests_total{env,release,code}`` with ``code`` the status
class (``2xx`` … ``5xx``, ``none`` for a request that got no answer — bounded labels, no paths), the
latency histogram on Prometheus ``le`` edges (``primitives.metrics.prometheus.LE_EDGES``, exact bucket
edges of the router's log-linear histogram, so cumulative counts are exact; ``_sum`` adds bucket
midpoints, within 1.6 %), upstream errors and retries. Counters start at 0 when the control plane
starts (Prometheus reads the reset as one). In-flight requests are read from the router (``stats``) at
each scrape. The control plane's series are read from the state database and the supervisor.

The endpoint has no token (Prometheus scrapes it) and binds loopback by default; when its port is taken
the control plane serves on a free port and says so (log, ``control.json`` ``metrics_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from shipyard.control.routerlink import RouterLink
from shipyard.control.supervisor import Supervisor
from shipyard.errors import ShipyardError
from shipyard.primitives.metrics import bucket_index, bucket_midpoint
from shipyard.primitives.metrics.prometheus import LE_EDGES
from shipyard.primitives.store import Store

log = logging.getLogger("shipyard.control")

_CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
_DEPLOY_LE = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_CUTS = tuple(bucket_index(e) for e in LE_EDGES)


@dataclass
class _RelCounters:
    codes: list[int] = field(default_factory=lambda: [0] * 6)
    hist: dict[int, int] = field(default_factory=dict)
    lat_sum: float = 0.0
    upstream_errors: int = 0
    retries: int = 0


class RouterCounters:
    """Cumulative per env × release counters, fed by the recorder with each ``slices`` reply."""

    def __init__(self) -> None:
        self.by_rel: dict[tuple[str, str], _RelCounters] = {}

    def add_reply(self, env: str, reply: dict[str, Any], end: int) -> None:
        for inst in reply.get("instances", []):
            c = self.by_rel.setdefault((env, str(inst["release"])), _RelCounters())
            for sl in inst.get("slices", []):
                if int(sl["sec"]) >= end:
                    continue
                for k, n in enumerate(sl["status"]):
                    c.codes[k] += int(n)
                for i, n in sl.get("histogram", []):
                    c.hist[int(i)] = c.hist.get(int(i), 0) + int(n)
                    c.lat_sum += bucket_midpoint(int(i)) * int(n)
                c.upstream_errors += int(sl.get("upstream_errors", 0))
                c.retries += int(sl.get("retried", 0))


def _esc(v: object) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**kw: object) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kw.items()) + "}"


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{v:.1f}"


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def add(self, name: str, value: float, **labels: object) -> None:
        self.lines.append(f"{name}{_labels(**labels) if labels else ''} {_num(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class MetricsExporter:
    def __init__(self, *, counters: RouterCounters, link: RouterLink, supervisor: Supervisor, store: Store,
                 alerts: Callable[[], list[dict[str, Any]]],
                 certs: Callable[[], dict[str, float]] | None = None) -> None:
        self.certs = certs  # env → the router TLS certificate's notAfter (control/certs.py)
        self.counters = counters
        self.link = link
        self.supervisor = supervisor
        self.store = store
        self.alerts = alerts

    async def render(self) -> str:
        out = Exposition()
        self._router(out)
        await self._inflight(out)
        await asyncio.to_thread(self._control, out)
        return out.text()

    def _router(self, out: Exposition) -> None:
        items = sorted(self.counters.by_rel.items())
        out.family("http_requests_total", "counter", "Requests answered by the router, by status class.")
        for (env, rel), c in items:
            for k, n in enumerate(c.codes):
                if n:
                    out.add("http_requests_total", n, env=env, release=rel, code=_CLASSES[k])
        out.family("http_request_duration_seconds", "histogram", "Time from request head to end of response.")
        for (env, rel), c in items:
            for edge, cut in zip(LE_EDGES, _CUTS, strict=True):
                out.add("http_request_duration_seconds_bucket", sum(n for i, n in c.hist.items() if i < cut),
                        env=env, release=rel, le=_num(edge))
            total = sum(c.hist.values())
            out.add("http_request_duration_seconds_bucket", total, env=env, release=rel, le="+Inf")
            out.add("http_request_duration_seconds_sum", c.lat_sum, env=env, release=rel)
            out.add("http_request_duration_seconds_count", total, env=env, release=rel)
        for name, attr, help_ in (
            ("router_upstream_errors_total", "upstream_errors", "Connect failures, resets and timeouts talking to instances."),
            ("router_upstream_retries_total", "retries", "Failed attempts the router retried on another instance."),
        ):
            out.family(name, "counter", help_)
            for (env, rel), c in items:
                out.add(name, getattr(c, attr), env=env, release=rel)

    async def _inflight(self, out: Exposition) -> None:
        out.family("http_requests_in_flight", "gauge", "Requests being proxied now.")
        for env in sorted({env for env, _ in self.counters.by_rel}):
            try:
                reply = await self.link.call("stats", 2.0, env=env, window_s=1)
            except ShipyardError:
                continue
            for rel, r in sorted(reply.get("releases", {}).items()):
                out.add("http_requests_in_flight", int(r.get("inflight", 0)), env=env, release=rel)

    def _control(self, out: Exposition) -> None:
        outcomes: dict[tuple[str, str], int] = {}
        rollbacks: dict[tuple[str, str], int] = {}
        durations: dict[str, list[float]] = {}
        for env, kind, status, has_reason, started, finished in self.store.deployment_summary():
            if status != "running":
                outcomes[(env, status)] = outcomes.get((env, status), 0) + 1
            if kind == "rollback":
                # An automatic rollback carries its trigger as the reason of a successful rollback.
                why = "automatic" if has_reason and status == "succeeded" else "manual"
                rollbacks[(env, why)] = rollbacks.get((env, why), 0) + 1
            elif status == "rolled_back":
                rollbacks[(env, "deploy_failed")] = rollbacks.get((env, "deploy_failed"), 0) + 1
            if kind == "deploy" and finished is not None:
                durations.setdefault(env, []).append(finished - started)
        out.family("shipyard_deployments_total", "counter", "Finished deployments by outcome.")
        for (env, outcome), n in sorted(outcomes.items()):
            out.add("shipyard_deployments_total", n, env=env, outcome=outcome)
        out.family("shipyard_deploy_duration_seconds", "histogram", "Wall time of finished deploys.")
        for env, ds in sorted(durations.items()):
            for le in _DEPLOY_LE:
                out.add("shipyard_deploy_duration_seconds_bucket", sum(1 for d in ds if d <= le), env=env, le=_num(le))
            out.add("shipyard_deploy_duration_seconds_bucket", len(ds), env=env, le="+Inf")
            out.add("shipyard_deploy_duration_seconds_sum", sum(ds), env=env)
            out.add("shipyard_deploy_duration_seconds_count", len(ds), env=env)
        out.family("shipyard_rollbacks_total", "counter",
                   "Rollbacks by reason: automatic (a trigger), manual, deploy_failed (the deploy undid itself).")
        for (env, why), n in sorted(rollbacks.items()):
            out.add("shipyard_rollbacks_total", n, env=env, reason=why)
        self._instances(out)
        self._backups(out)
        out.family("shipyard_cert_expiry_timestamp_seconds", "gauge",
                   "notAfter of the router's TLS certificate of the environment.")
        for env, at in sorted((self.certs() if self.certs else {}).items()):
            out.add("shipyard_cert_expiry_timestamp_seconds", at, env=env)
        out.family("shipyard_alert_firing", "gauge", "1 for each firing alert (like Prometheus' ALERTS).")
        for a in self.alerts():
            if a["state"] == "firing":
                out.add("shipyard_alert_firing", 1, alertname=a["name"], env=a["env"], severity=a["severity"])

    def _instances(self, out: Exposition) -> None:
        restarts: dict[tuple[str, str], int] = {}
        up: dict[tuple[str, str], int] = {}
        failures: dict[tuple[str, str], int] = {}
        cpu: dict[tuple[str, str], float] = {}
        rss: dict[tuple[str, str], float] = {}
        for st in self.supervisor.all():
            key = (st.env, st.release)
            cpu[key] = max(cpu.get(key, 0.0), st.cpu_percent / 100.0)
            rss[key] = max(rss.get(key, 0.0), float(st.rss_bytes))
            restarts[key] = restarts.get(key, 0) + st.restarts
            up[key] = up.get(key, 0) + int(st.ready and st.state not in ("crashed", "stopping", "stopped", "restarting"))
            failures[key] = max(failures.get(key, 0), st.consecutive_health_failures)
        for name, kind, table, help_ in (
            ("shipyard_instance_restarts_total", "counter", restarts, "Instance restarts (crashes, failed liveness)."),
            ("shipyard_instances_up", "gauge", up, "Instances alive and ready."),
            ("shipyard_instance_health_failures", "gauge", failures, "Worst consecutive failed health checks."),
        ):
            out.family(name, kind, help_)
            for (env, rel), n in sorted(table.items()):
                out.add(name, n, env=env, release=rel)
        # The `cpu` and `memory` alert series, per release (the busiest / largest instance).
        total = float(psutil.virtual_memory().total)
        for name, ratios, scale, help_ in (
            ("shipyard_instance_cpu_ratio", cpu, 1.0, "Busiest instance's CPU, share of one core."),
            ("shipyard_instance_memory_ratio", rss, total, "Largest instance's RSS, share of its memory limit."),
        ):
            out.family(name, "gauge", help_)
            for (env, rel), v in sorted(ratios.items()):
                out.add(name, round(v / scale, 6), env=env, release=rel)

    def _backups(self, out: Exposition) -> None:
        last_ok = self.store.backup_success_times()
        out.family("shipyard_backup_last_success_timestamp_seconds", "gauge", "End of the newest good backup.")
        for (env, source), at in sorted(last_ok.items()):
            out.add("shipyard_backup_last_success_timestamp_seconds", at, env=env, source=source)
        failed: dict[tuple[str, str], bool] = {}
        for r in sorted(self.store.list_backup_runs(None, limit=10_000), key=lambda r: r.id):
            failed[(r.env, r.source)] = r.status != "ok"  # oldest first: the newest run of a source wins
            if r.status == "ok":
                failed[(r.env, "*")] = False  # a whole scheduled job's failure counts until a later success
        out.family("shipyard_backup_last_run_failed", "gauge",
                   "1 when the newest backup run of the source failed (source \"*\": a whole scheduled job).")
        for (env, source), bad in sorted(failed.items()):
            out.add("shipyard_backup_last_run_failed", int(bad), env=env, source=source)
        newest: dict[tuple[str, str], Any] = {}
        for d in sorted(self.store.list_drills(None, limit=10_000), key=lambda d: d.id):
            for res in d.detail.get("sources", []) if isinstance(d.detail, dict) else []:
                newest[(d.env, str(res.get("source")))] = res
        for name, field_, help_ in (("shipyard_drill_rto_seconds", "rto_s", "Restore time of the newest drill."),
                                 ("shipyard_drill_rpo_seconds", "rpo_s", "Data-loss window of the newest drill."),
                                 ("shipyard_drill_ok", "ok", "1 when the newest drill met its objectives.")):
            out.family(name, "gauge", help_)
            for (env, source), res in sorted(newest.items()):
                if res.get(field_) is not None:
                    out.add(name, float(res[field_]), env=env, source=source)


class MetricsServer:
    """``GET /metrics`` over plain HTTP/1.1 (one request per connection, 5 s to send it)."""

    def __init__(self, render: Callable[[], Any]) -> None:
        self.render = render
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            if port == 0:
                raise ShipyardError(f"cannot serve metrics on {host}: {exc.strerror}") from exc
            log.warning("metrics: %s:%d is taken (%s); serving on a free port instead", host, port, exc.strerror)
            self._server = await asyncio.start_server(self._serve, host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("metrics: Prometheus text on http://%s:%d/metrics", host, self.port)
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, target = (head.split(b"\r\n", 1)[0].split(b" ") + [b"", b""])[:2]
            status, ctype, body = "404 Not Found", "text/plain", b"not found: try /metrics\n"
            if method == b"GET" and target.split(b"?")[0] == b"/metrics":
                status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
                body = (await self.render()).encode()
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await asyncio.wait_for(writer.drain(), 10.0)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("metrics: a scrape failed")
        finally:
            writer.close()
