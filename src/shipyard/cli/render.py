"""Rendering deploy / rollback event streams: a live step view for people, one JSON document for --json.

Every piece of text from the control plane goes through ``esc``: plans and reasons quote spec tables
(``[rollback]``, ``[environments.staging.canary]``) that rich would otherwise take for markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shipyard.cli.app import esc
from shipyard.cli.client import raise_remote
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.cli.app import AppContext

EXIT = {"succeeded": 0, "failed": 1, "rolled_back": 1, "interrupted": 1, "rejected": 1, "expired": 1}


class Shown:
    """The lines already printed in this deployment's output, so that a failure's output is shown once.

    A failed build streams its output live (``log`` events); its step error and the deployment's reason
    then carry the last lines again, and an instance crash's reason repeats the step error. ``once(text)``
    keeps the first line of a message and drops the further lines already printed.
    """

    def __init__(self) -> None:
        self._lines: set[str] = set()

    def add(self, line: str) -> str:
        line = line.rstrip()
        if line.strip():
            self._lines.add(line.strip())
        return line

    def once(self, text: str) -> str:
        head, *rest = text.splitlines() or [""]
        new = [line for line in rest if line.strip() and line.strip() not in self._lines]
        for line in [head, *new]:
            self.add(line)
        if len(new) < len([line for line in rest if line.strip()]):
            head = head.removesuffix(" — last lines:").removesuffix(":") + " (output above)"
        return "\n".join([head, *new])


def spec_path(key: str, env: str) -> str:
    """A plan's config key as written in shipyard.toml: the snapshot's ``environment.*`` is
    ``environments.<env>.*`` (set there or inherited from ``[defaults]``)."""
    return f"environments.{env}.{key.removeprefix('environment.')}" if key.startswith("environment.") else key


def render_plan(console: Console, plan: dict[str, Any]) -> None:
    ch = plan.get("changes", {})
    frm = plan.get("previous_release") or "(nothing)"
    console.print(f"[bold]{esc(plan['kind'])}[/] {esc(plan['env'])}: {esc(frm)} → [bold]{esc(plan['release'])}[/] "
                  f"({esc(plan['strategy'])}{', warm switch' if plan.get('warm_switch') else ''})")
    commit = plan.get("commit") or {}
    if commit.get("message"):
        short = commit.get("short") or str(commit.get("sha", ""))[:12]
        console.print(f"  commit {esc(short)}  {esc(commit['message'])}")
    for c in ch.get("commits", [])[:10]:
        console.print(f"    {esc(c['sha'])} {esc(c['message'])}  [dim]{esc(c.get('author', ''))}[/]")
    if ch.get("config_changed"):
        keys = [spec_path(k, plan["env"]) for k in ch["config_changed"]]
        console.print(f"  config changed: {esc(', '.join(keys))}")
    if ch.get("secrets_changed"):
        console.print(f"  secrets changed: {esc(', '.join(ch['secrets_changed']))}")
    if plan.get("approval"):
        a = plan["approval"]
        console.print(esc(f"  approval: waits for {a['required']} approval(s) from identities with the approver "
                          f"role{' other than the one asking' if a['prevent_self_review'] else ''} before step 1; "
                          f"expires after {a['timeout_s'] / 3600:g}h"))
    gates = plan.get("health_gates", {})
    if gates.get("health"):
        h = gates["health"]
        ready = gates.get("ready", {}).get("path", h["path"])
        console.print(esc(f"  health gate: GET {h['path']} every {h['interval_s']}s, {h['retries']} failures → "
                          f"restart; ready: {ready}; timeout {gates.get('deploy_timeout_s')}s"))


def render_plan_steps(console: Console, plan: dict[str, Any]) -> None:
    for i, s in enumerate(plan["steps"], 1):
        est = "" if s["name"] == "canary" else f"  [dim]~{esc(s['estimate_s'])}s[/]"
        console.print(f"  {i:>2}. {esc(s['description'])}{est}")
    if plan.get("canary"):
        console.print("  canary:")
        for line in plan["canary"]["lines"]:
            console.print(f"    {esc(line)}")
    elif plan.get("rollback_triggers"):
        console.print("  rollback triggers: " + esc("; ".join(plan["rollback_triggers"])))
    if plan.get("watch"):
        console.print(f"  {esc(plan['watch'])}")
    console.print(f"  estimated: ~{esc(plan['estimated_duration_s'])}s" + (" plus the canary's judged steps"
                                                                             if plan.get("canary") else ""))


def render_failure(console: Console, failure: dict[str, Any] | None) -> None:
    """The failing conditions of a rolled-back canary: what, observed value, window."""
    canary = (failure or {}).get("canary")
    if not canary:
        return
    console.print(f"  canary was at {esc(canary.get('weight'))}% when it was rolled back")
    for f in canary.get("failing", []):
        start, end = f.get("window") or (None, None)
        window = f" over {_clock(start)}–{_clock(end)}" if start is not None else ""
        console.print(f"    [red]{esc(f['condition'])}[/]: {esc(f['reason'])}{window}")


def _clock(t: float | None) -> str:
    import time

    return time.strftime("%H:%M:%S", time.localtime(t)) if t is not None else "?"


def follow(app: AppContext, events: Iterator[dict[str, Any]], *, as_json: bool, plan_only: bool,
           detach: bool = False) -> int:
    console = app.out
    shown = Shown()
    status = None
    last_canary: object = None
    approvals: object = None
    result: dict[str, Any] | None = None
    try:
        for ev in events:
            kind = ev.get("event")
            if "error" in ev and kind in (None, "error"):
                raise_remote(ev)
            if kind == "plan":
                if plan_only:
                    if as_json:
                        app.print_json(ev["plan"])
                    else:
                        render_plan(console, ev["plan"])
                        render_plan_steps(console, ev["plan"])
                    return 0
                if not as_json:
                    render_plan(console, ev["plan"])
            elif kind == "step" and not as_json:
                if ev["status"] == "started":
                    if status is None:
                        status = console.status(esc(ev["description"]))
                        status.start()
                    else:
                        status.update(esc(ev["description"]))
                else:
                    mark = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]"}.get(ev["status"], "·")
                    console.print(f"  {mark} {esc(ev['description'])}  [dim]{ev.get('duration_s', 0):.2f}s[/]")
                    if ev.get("error"):
                        console.print(f"    [red]{esc(shown.once(ev['error']))}[/]")
            elif kind == "canary" and not as_json:
                # One line per change of action; the spinner shows the latest reason.
                line = esc(f"canary {ev.get('weight')}%: {ev['reason']}")
                if status is not None:
                    status.update(line)
                if ev.get("action") != last_canary:
                    last_canary = ev.get("action")
                    colour = {"rollback": "red", "pause": "yellow", "continue": "green"}.get(str(last_canary), "dim")
                    console.print(f"    [{colour}]{line}[/]")
            elif kind == "waiting_approval":
                if detach:
                    if as_json:
                        app.print_json(ev)
                    else:
                        app.echo(waiting_line(ev))
                    return 0
                if not as_json:
                    # One line per new approval (kept in a log); the spinner counts down on a terminal.
                    if ev["approvals"] != approvals:
                        approvals = ev["approvals"]
                        console.print(esc(waiting_line(ev)))
                    if status is None:
                        status = console.status(esc(waiting_line(ev)))
                        status.start()
                    else:
                        status.update(esc(waiting_line(ev)))
            elif kind in ("approved", "approval_blocked") and not as_json:
                console.print(esc(f"  deployment {ev['deployment']} approved by {', '.join(ev['approvals'])}: "
                                  "starting" if kind == "approved" else f"  {ev['message']}"))
            elif kind == "log" and not as_json:
                console.print(f"    [dim]{esc(shown.add(ev['line']))}[/]")
            elif kind == "result":
                result = ev["result"]
    finally:
        if status is not None:
            status.stop()
    if result is None:
        raise ShipyardError("the control plane ended the deployment stream without a result (see 'shipyard status')")
    if as_json:
        app.print_json(result)
    else:
        render_result(console, result, shown)
    return EXIT.get(result["outcome"], 1)


def waiting_line(ev: dict[str, Any]) -> str:
    import time

    left = max(0.0, ev["expires_at"] - time.time())
    return (f"deployment {ev['deployment']} ({ev['release']} to {ev['env']}) waits for approval: "
            f"{len(ev['approvals'])}/{ev['required']} (`shipyard approve {ev['deployment']}`; expires in {left / 3600:.1f}h)")


def render_result(console: Console, result: dict[str, Any], shown: Shown | None = None) -> None:
    ok = result["outcome"] == "succeeded"
    kept = result["release"] if ok else (result["previous_release"] or "nothing")
    console.print(f"[{'green' if ok else 'red'}]{esc(result['kind'])} {esc(result['outcome'])}[/]: "
                  + esc(f"{result['env']} {'now serves' if ok else 'kept'} {kept} in {result['duration_s']:.2f}s "
                        f"(deployment {result['deployment']})"))
    if result.get("reason"):
        console.print(f"  reason: {esc((shown or Shown()).once(result['reason']))}")
    render_failure(console, result.get("rollback"))
    if result.get("watch"):
        w = result["watch"]
        console.print(esc(f"  watching {w['release']} until {_clock(w['until'])}: a rollback trigger firing "
                          f"rolls back to {w['previous']}"))

