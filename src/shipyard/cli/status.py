"""shipyard status: what serves where."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.cli.app import AppContext
    from shipyard.errors import ControlPlaneUnavailable


def command(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show releases, weights and instances per environment."""
    from urllib.parse import quote

    from shipyard.cli.app import AppContext
    from shipyard.errors import ControlPlaneUnavailable

    app = AppContext.of(ctx)
    if env is not None and app.remote is None:
        app.check_env(env)
        if app.env(env).target == "kubernetes":
            from shipyard.cli.kube_status import status as kube_status

            kube_status(app, env, json_out)  # read from the API server, no control plane needed
            return
    try:
        # The control plane validates the spec and the environment (exit 2): no need to load it here too.
        data: Any = app.client.call("GET", "/v1/status" + (f"?env={quote(env)}" if env else ""))
    except ControlPlaneUnavailable as err:
        if app.remote is not None:
            raise
        _router_only(app, env, json_out, err)
    if json_out:
        app.print_json(data)
        return
    for st in [data] if env else data:
        render_env(app.out, st)


def _router_only(app: AppContext, env: str | None, json_out: bool, err: ControlPlaneUnavailable) -> NoReturn:
    """The control plane is down but the router may still serve: show what it knows, then exit 1."""
    from shipyard.cli.routerview import render_router_view, router_view

    if env is not None:
        app.env(env)  # an unknown environment is still bad input (exit 2)
    doc = router_view(app, env)
    if json_out:
        app.print_json(doc)
    else:
        render_router_view(app.out, doc)
    app.abort(f"{err}; status shows only what the router knows until then", err.exit_code)


def _at(t: float, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return time.strftime(fmt, time.localtime(t))


def render_env(console: Console, st: dict[str, Any]) -> None:
    from rich.table import Table

    from shipyard.cli.app import esc

    weights = ", ".join(f"{r} {w}%" for r, w in st["weights"].items()) or "no traffic"
    console.print(f"[bold]{esc(st['env'])}[/]  {esc(st['url'])}  release [bold]{esc(st['release'] or '-')}[/]  "
                  f"({esc(weights)})")
    if st.get("deployment"):
        d = st["deployment"]
        console.print(esc(f"  deployment {d['id']} running: {d['kind']} of {d['release']}"))
    elif st.get("last_deployment"):
        d = st["last_deployment"]
        console.print(esc(f"  last deployment {d['id']}: {d['kind']} of {d['release']} {d['outcome']}"
                          + (f" — {d['reason']}" if d.get("reason") else "")))
    if st.get("canary"):
        c = st["canary"]
        step = c.get("step") or {}
        reason = (c.get("decision") or {}).get("reason", step.get("description", ""))
        console.print(esc(f"  canary {c['release']} at {c['weight']}% (step {step.get('index', -1) + 1} of "
                          f"{c['total_steps']}") + (", [yellow]PAUSED[/]" if c["paused"] else "")
                      + f"): {esc(reason)}")
    if st.get("watch"):
        w = st["watch"]
        console.print(esc(f"  watch: {w['release']} {w['state']} until {_at(w['until'], '%H:%M:%S')} "
                          f"({w['reason']})"))
    b = st.get("backup")
    if b:
        line = f"  backups: last good {_at(b['last_ok']) if b.get('last_ok') else 'never'}"
        if b.get("last_problem"):
            p = b["last_problem"]
            line += f"; [red]{esc(p['status'])}[/] run of {esc(p['source'])} at {_at(p['at'])}"
        if b.get("last_drill"):
            line += f"; last drill {'ok' if b['last_drill']['ok'] else '[red]FAILED[/]'}"
        console.print(line)
    if st["instances"]:
        t = Table(box=None, pad_edge=False)
        procs = st.get("processes") or {}
        if len(procs) > 1:  # more than web: one line per process type
            console.print("  processes: " + esc(", ".join(
                f"{name} {p['ready']}/{p['running']} ready" + ("" if p["routed"] else " (not routed)")
                for name, p in procs.items())))
        for col in ("instance", "process", "release", "role", "pid", "port", "ready", "state", "restarts", "cpu",
                    "rss"):
            t.add_column(col, no_wrap=col in ("instance", "release", "state"))
        for i in st["instances"]:
            # Against its limits when it has them: "120M/200M", "18%/0.2"; OOM kills beside the restarts.
            rss = f"{(i.get('rss_bytes') or 0) / 1048576:.0f}M"
            if i.get("memory_limit"):
                rss += f"/{i['memory_limit'] / 1048576:.0f}M"
            cpu = f"{i.get('cpu_percent') or 0:.0f}%" + (f"/{i['cpu_limit']:g}" if i.get("cpu_limit") else "")
            restarts = str(i["restarts"]) + (f" ({i['oom_kills']} OOM)" if i.get("oom_kills") else "")
            t.add_row(esc(i["id"]), esc(i.get("process", "web")), esc(i["release"]),
                      esc(i["role"] if i.get("process", "web") == "web" else "-"), str(i["pid"]), str(i["port"]),
                      "yes" if i["ready"] else "no", esc(i["state"]), restarts, cpu, rss)
        console.print(t)
