"""shipyard verify: load an environment at a fixed rate and judge it against its thresholds (go / no-go)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.cli.app import AppContext
    from shipyard.engine.verify.result import VerifyResult
    from shipyard.primitives.spec.verify import VerifySpec


def command(
    ctx: typer.Context,
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to verify (its router port).")],
    rate: Annotated[float | None, typer.Option("--rate", help="Requests per second (default: the spec's).")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="How long, e.g. 60s (default: the spec's).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document only.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report here.")] = None,
    locustfile: Annotated[Path | None, typer.Option("--locustfile", help="Run this Locust file instead.")] = None,
    users: Annotated[int, typer.Option("--users", help="Locust users (with --locustfile).")] = 10,
) -> None:
    """Verify an environment under load: exit 0 on go, 99 on no-go."""
    from dataclasses import replace

    from shipyard.cli.app import AppContext, esc
    from shipyard.engine.verify.report import report_path, write_report
    from shipyard.errors import NoGo
    from shipyard.primitives.spec.durations import parse_duration
    from shipyard.primitives.spec.verify import VerifySpec

    app = AppContext.of(ctx)
    env_spec = app.env(env)
    spec = env_spec.verify or VerifySpec()
    seconds = None
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            app.abort(f"--duration: {exc}", 2)
    target = env_spec.url
    before = _restarts(app, env)
    if locustfile is not None:
        result = _run_locust(locustfile, target, spec, users, seconds, rate, app.err, quiet=json_out)
    else:
        result = _run(target, spec, rate, seconds, app.err, quiet=json_out, project_dir=app.project.dir)
    restarts = _restarted(before, _restarts(app, env))
    if restarts.get("note"):
        result = replace(result, warnings=(*result.warnings, restarts["note"]))
    path = write_report(result, report or report_path(app.project.state_dir, env, result.started_at), env=env)
    if json_out:
        app.print_json({**result.to_json(), "env": env, "report": str(path), "restarts": restarts})
    else:
        out = app.out
        if env_spec.verify is None:
            out.print(f"[dim]{esc(f'{env} has no [environments.{env}.verify] table: default load, no thresholds')}[/]")
        render_summary(out, result)
        out.print(f"report: {esc(path)}")
    if not result.go:
        raise NoGo(result.summary())


def _restarts(app: AppContext, env: str) -> dict[str, tuple[str, int]] | None:
    """Each instance's restart count from the control API's status (None when it is not running)."""
    from urllib.parse import quote

    from shipyard.errors import ControlPlaneUnavailable

    try:
        st = app.client.call("GET", f"/v1/status?env={quote(env)}", timeout=10)
    except ControlPlaneUnavailable:
        return None
    return {i["id"]: (i["release"], int(i["restarts"])) for i in st.get("instances", [])}


def _restarted(before: dict[str, tuple[str, int]] | None, after: dict[str, tuple[str, int]] | None
               ) -> dict[str, Any]:
    """Which instances restarted during the run: under overload a failing liveness probe restarts them,
    which makes the overload worse (docs/verify.md: "Overload and the liveness probe")."""
    if before is None or after is None:
        return {"checked": False, "reason": "the control plane is not running: restarts not known",
                "instances": [], "total": 0}
    instances: list[dict[str, Any]] = [{"instance": iid, "release": rel, "restarts": n - before[iid][1]}
                 for iid, (rel, n) in sorted(after.items()) if iid in before and n > before[iid][1]]
    total = sum(i["restarts"] for i in instances)
    doc: dict[str, Any] = {"checked": True, "instances": instances, "total": total}
    if instances:
        listed = ", ".join(f"{i['instance']} ×{i['restarts']}" for i in instances)
        doc["note"] = (f"{len(instances)} instance(s) restarted during the run ({listed}): a liveness probe "
                       "failing under this load restarts instances, which makes an overload worse — the "
                       "results include those restarts (docs/verify.md, 'Overload and the liveness probe')")
    return doc


def _run(target: str, spec: VerifySpec, rate: float | None, seconds: float | None, err: Console, *, quiet: bool,
         project_dir: Path) -> VerifyResult:
    import asyncio
    import math

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from shipyard.engine.verify.generator import Progress as Tick
    from shipyard.engine.verify.runner import run_verify
    run_s = (seconds or spec.duration) + spec.ramp
    if quiet:
        return asyncio.run(run_verify(target, spec, rate=rate, duration=seconds, project_dir=project_dir))
    bar = Progress(TextColumn("verify"), BarColumn(), TextColumn("{task.fields[live]}"), TimeRemainingColumn(),
                   console=err, transient=True)
    task = bar.add_task("verify", total=run_s, live="starting")

    def on_progress(p: Tick) -> None:
        p95 = "n/a" if math.isnan(p.p95_ms) else f"{p.p95_ms:.1f} ms"
        bar.update(task, completed=min(p.elapsed, run_s),
                   live=f"{p.rate:,.0f} req/s  p95 {p95}  failed {p.failed}  conns {p.connections}")

    with bar:
        return asyncio.run(run_verify(target, spec, rate=rate, duration=seconds, on_progress=on_progress,
                                      project_dir=project_dir))


def _run_locust(locustfile: Path, target: str, spec: VerifySpec, users: int, seconds: float | None,
                rate: float | None, err: Console, *, quiet: bool) -> VerifyResult:
    import asyncio

    from shipyard.cli.app import esc
    from shipyard.engine.verify.locust import run_locust

    if not quiet:
        err.print(esc(f"running locust -f {locustfile} with {users} users against {target}"))
    return asyncio.run(run_locust(locustfile, target, spec, users=users, duration=seconds, rate=rate,
                                  on_output=None if quiet else lambda line: err.print(esc(line))))


def render_summary(out: Console, r: VerifyResult) -> None:
    import math

    from rich.table import Table

    from shipyard.cli.app import esc

    def ms(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{v:.1f} ms"

    out.print(f"target {esc(r.target)}  ·  {r.requests} requests in {r.duration:g}s  ·  "
              f"rate {r.rate_achieved:,.1f}/s (asked {r.rate_requested:g}/s)  ·  failed {r.failed_rate:.3%}")
    out.print(f"latency  p50 {ms(r.latency.p50)}  p95 {ms(r.latency.p95)}  p99 {ms(r.latency.p99)}  "
              f"max {ms(r.latency.max)}")
    if r.generator:
        g = r.generator
        out.print(f"[dim]generator  CPU {g.cpu_percent:.0f}% of a core  ·  {g.connections} connections  ·  "
                  f"late {g.late}  ·  dropped {g.dropped}[/]")
    for w in r.warnings:
        out.print(f"[yellow]warning:[/] {esc(w)}")
    if r.thresholds:
        table = Table("metric", "threshold", "observed", "result")
        for t in r.thresholds:
            table.add_row(esc(t.metric), esc(t.expr), esc(t.observed_text()),
                          "[green]pass[/]" if t.ok else "[red bold]FAIL[/]")
        out.print(table)
    out.print("[bold green]GO[/]" if r.go else "[bold red]NO-GO[/]")
