"""shipyard status: what serves where."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer


def command(
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Show releases, weights and instances per environment."""
    from rich.console import Console
    from rich.table import Table

    from shipyard.cli.common import find_project, load_project_spec, print_json
    from shipyard.control.client import ControlClient
    from shipyard.control.paths import Paths

    project = find_project()
    spec = load_project_spec(project)
    if env:
        spec.env(env)
    client = ControlClient(Paths(project.dir))
    data: Any = client.call("GET", "/v1/status" + (f"?env={env}" if env else ""))
    if json_out:
        print_json(data)
        return
    console = Console(highlight=False)
    for st in [data] if env else data:
        weights = ", ".join(f"{r} {w}%" for r, w in st["weights"].items()) or "no traffic"
        console.print(f"[bold]{st['env']}[/]  {st['url']}  release [bold]{st['release'] or '-'}[/]  ({weights})")
        if st.get("deployment"):
            d = st["deployment"]
            console.print(f"  deployment {d['id']} running: {d['kind']} of {d['release']}")
        elif st.get("last_deployment"):
            d = st["last_deployment"]
            console.print(f"  last deployment {d['id']}: {d['kind']} of {d['release']} {d['outcome']}"
                          + (f" — {d['reason']}" if d.get("reason") else ""))
        if st.get("canary"):
            c = st["canary"]
            step = c.get("step") or {}
            console.print(f"  canary {c['release']} at {c['weight']}% (step {step.get('index', -1) + 1} of "
                          f"{c['total_steps']}{', [yellow]PAUSED[/]' if c['paused'] else ''}): "
                          f"{(c.get('decision') or {}).get('reason', step.get('description', ''))}")
        if st.get("watch"):
            w = st["watch"]
            until = time.strftime("%H:%M:%S", time.localtime(w["until"]))
            console.print(f"  watch: {w['release']} {w['state']} until {until} ({w['reason']})")
        b = st.get("backup")
        if b:
            last_ok = time.strftime("%Y-%m-%d %H:%M", time.localtime(b["last_ok"])) if b.get("last_ok") else "never"
            line = f"  backups: last good {last_ok}"
            if b.get("last_problem"):
                p = b["last_problem"]
                line += f"; [red]{p['status']}[/] run of {p['source']} at " + \
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(p["at"]))
            if b.get("last_drill"):
                line += f"; last drill {'ok' if b['last_drill']['ok'] else '[red]FAILED[/]'}"
            console.print(line)
        if st["instances"]:
            t = Table(box=None, pad_edge=False)
            for col in ("instance", "release", "role", "pid", "port", "ready", "state", "restarts", "cpu", "rss"):
                t.add_column(col)
            for i in st["instances"]:
                rss = f"{(i.get('rss_bytes') or 0) / 1048576:.0f}M"
                t.add_row(i["id"], i["release"], i["role"], str(i["pid"]), str(i["port"]),
                          "yes" if i["ready"] else "no", i["state"], str(i["restarts"]),
                          f"{i.get('cpu_percent') or 0:.0f}%", rss)
            console.print(t)
