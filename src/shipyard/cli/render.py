"""Rendering deploy / rollback event streams: a live step view for people, one JSON document for --json."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console

from shipyard.cli.common import print_json
from shipyard.errors import ShipyardError

EXIT = {"succeeded": 0, "failed": 1, "rolled_back": 1, "interrupted": 1}


def render_plan(console: Console, plan: dict[str, Any]) -> None:
    ch = plan.get("changes", {})
    frm = plan.get("previous_release") or "(nothing)"
    console.print(f"[bold]{plan['kind']}[/] {plan['env']}: {frm} → [bold]{plan['release']}[/] "
                  f"({plan['strategy']}{', warm switch' if plan.get('warm_switch') else ''})")
    commit = plan.get("commit") or {}
    if commit.get("message"):
        console.print(f"  commit {commit.get('short') or str(commit.get('sha', ''))[:12]}  {commit['message']}")
    for c in ch.get("commits", [])[:10]:
        console.print(f"    {c['sha']} {c['message']}  [dim]{c.get('author', '')}[/]")
    if ch.get("config_changed"):
        console.print(f"  config changed: {', '.join(ch['config_changed'])}")
    if ch.get("secrets_changed"):
        console.print(f"  secrets changed: {', '.join(ch['secrets_changed'])}")
    gates = plan.get("health_gates", {})
    if gates.get("health"):
        h = gates["health"]
        console.print(f"  health gate: GET {h['path']} every {h['interval_s']}s, {h['retries']} failures → "
                      f"restart; ready: {gates.get('ready', {}).get('path', h['path'])}; "
                      f"timeout {gates.get('deploy_timeout_s')}s")


def render_plan_steps(console: Console, plan: dict[str, Any]) -> None:
    for i, s in enumerate(plan["steps"], 1):
        console.print(f"  {i:>2}. {s['description']}  [dim]~{s['estimate_s']}s[/]")
    console.print(f"  estimated: ~{plan['estimated_duration_s']}s")


def follow(events: Iterator[dict[str, Any]], *, as_json: bool, plan_only: bool) -> int:
    console = Console(stderr=False, highlight=False)
    status = None
    result: dict[str, Any] | None = None
    try:
        for ev in events:
            kind = ev.get("event")
            if "error" in ev and kind in (None, "error"):
                raise _remote(ev)
            if kind == "plan":
                if plan_only:
                    if as_json:
                        print_json(ev["plan"])
                    else:
                        render_plan(console, ev["plan"])
                        render_plan_steps(console, ev["plan"])
                    return 0
                if not as_json:
                    render_plan(console, ev["plan"])
            elif kind == "step" and not as_json:
                if ev["status"] == "started":
                    if status is None:
                        status = console.status(ev["description"])
                        status.start()
                    else:
                        status.update(ev["description"])
                else:
                    mark = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]"}.get(ev["status"], "·")
                    console.print(f"  {mark} {ev['description']}  [dim]{ev.get('duration_s', 0):.2f}s[/]")
                    if ev.get("error"):
                        console.print(f"    [red]{ev['error']}[/]")
            elif kind == "log" and not as_json:
                console.print(f"    [dim]{ev['line'].rstrip()}[/]")
            elif kind == "result":
                result = ev["result"]
    finally:
        if status is not None:
            status.stop()
    if result is None:
        raise ShipyardError("the control plane ended the deployment stream without a result (see 'shipyard status')")
    if as_json:
        print_json(result)
    else:
        colour = "green" if result["outcome"] == "succeeded" else "red"
        line = (f"[{colour}]{result['kind']} {result['outcome']}[/]: {result['env']} "
                f"{'now serves' if result['outcome'] == 'succeeded' else 'kept'} "
                f"{result['release'] if result['outcome'] == 'succeeded' else (result['previous_release'] or 'nothing')}"
                f" in {result['duration_s']:.2f}s (deployment {result['deployment']})")
        console.print(line)
        if result.get("reason"):
            console.print(f"  reason: {result['reason']}")
    return EXIT.get(result["outcome"], 1)


def _remote(ev: dict[str, Any]) -> ShipyardError:
    err = ShipyardError(ev["error"])
    err.exit_code = int(ev.get("exit_code", 1))
    return err
