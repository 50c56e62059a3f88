"""shipyard backup run|list|verify|restore|forget|drill: encrypted backups of an environment's data.

Every subcommand asks the control plane (``control/reads.py``), which opens the backups, does the work
and records it: the CLI never touches the state store or a repository. Input that is wrong whatever the
state (``--to`` with ``--to-path``, a malformed ``--at``, a restore over the original without ``--yes``)
is refused here first, with its exit code, even when the control plane is not running.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from shipyard.cli.app import AppContext

app = typer.Typer(help="Back up an environment's data, verify it, restore it and prove it with drills.",
                  no_args_is_help=True)

Env = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
Source = Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

# The control plane sends a heartbeat every few seconds while a long operation runs.
IDLE_TIMEOUT_S = 60.0


def _app(ctx: typer.Context, env: str) -> AppContext:
    from shipyard.cli.app import AppContext

    ap = AppContext.of(ctx)
    ap.env(env)  # bad config or unknown environment: exit 2 before anything else
    return ap


def _long(ap: AppContext, op: str, path: str, body: dict[str, Any], *, quiet: bool) -> Any:
    """POST a long operation and follow its events to the result (a spinner on a terminal)."""
    from shipyard.cli.client import raise_remote
    from shipyard.errors import ShipyardError

    status = None if quiet or not ap.err.is_terminal else ap.err.status(f"{op}…")
    if status is not None:
        status.start()
    try:
        for ev in ap.client.stream(path, body, idle_timeout=IDLE_TIMEOUT_S):
            kind = ev.get("event")
            if "error" in ev and kind in (None, "error"):
                raise_remote(ev)
            if kind == "heartbeat" and status is not None:
                status.update(f"{op}… {ev.get('elapsed_s', 0):.0f}s")
            elif kind == "result":
                for warning in ev.get("warnings") or []:
                    ap.warn(warning)
                return ev.get("result")
    finally:
        if status is not None:
            status.stop()
    raise ShipyardError(f"the control plane ended the {op} without a result (see {ap.paths.daemon_log})")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(t))


@app.command()
def run(ctx: typer.Context, env: Env, source: Source = None, json_out: Json = False) -> None:
    """Back up every source now (or one), replicate to copy_to, and record the run."""
    ap = _app(ctx, env)
    key_file = ap.paths.state / "backup.key"
    had_key = key_file.exists()
    results = _long(ap, "backup run", "/v1/backups/run", {"env": env, "source": source}, quiet=json_out)
    if not had_key and key_file.exists():
        # Said once, when this run made it; on stderr (never the key itself), so --json stays whole.
        ap.warn(f"created the backup key {key_file}: keep a copy of it somewhere safe (a password manager) — "
                "without it no backup can be restored (or set it as the BACKUP_KEY secret)")
    if json_out:
        ap.print_json(results)
    else:
        for r in results:
            took = f"{r['duration_s']:.1f}s"
            if r["backup_id"] and r.get("pitr"):
                ap.echo(f"{r['source']:<12} ok  {r['backup_id']}  pgBackRest {r['pitr']['type']}  "
                        f"{_size(r['plain_size'])} cluster, {_size(r['stored_size'])} stored  {took}")
                for note in r["pitr"].get("notes", []):
                    ap.echo(f"  {note}")
            elif r["backup_id"]:
                copies = "".join(f"  copy {c['repository']}: {'ok' if c['ok'] else c['error']}" for c in r["copies"])
                ap.echo(f"{r['source']:<12} {'ok' if r['ok'] else 'FAILED'}  {r['backup_id']}  "
                        f"{_size(r['plain_size'])} → {_size(r['stored_size'])} stored  {took}{copies}")
            else:
                ap.echo(f"{r['source']:<12} FAILED  {r['error']}")
    if not all(r["ok"] for r in results):
        raise SystemExit(1)


@app.command("list")
def list_(ctx: typer.Context, env: Env, source: Source = None, json_out: Json = False) -> None:
    """List complete backups (newest last) and recent failed or missed scheduled runs."""
    from urllib.parse import urlencode

    from shipyard.primitives.spec.durations import format_duration

    ap = _app(ctx, env)
    query = urlencode({"env": env, **({"source": source} if source else {})})
    doc = ap.client.call("GET", f"/v1/backups?{query}", timeout=IDLE_TIMEOUT_S)
    if json_out:
        ap.print_json(doc)
        return
    now = time.time()
    ap.echo(f"repository {doc['repository']}")
    for m in doc["backups"]:
        ap.echo(f"  {m['source']:<12} {m['id']}  {_when(m['created_at'])}  "
                f"age {format_duration(now - m['snapshot_time']):>6}  "
                f"{_size(m['plain_size']):>9} → {_size(m['stored_size'])}")
    if not doc["backups"] and not doc["pitr"]:
        ap.echo("  no backups")
    for p in doc["pitr"]:
        ap.echo(f"  {p['source']:<12} pgBackRest {p['repository']}" + (f"  {p['error']}" if p["error"] else ""))
        for b in p["backups"]:
            ap.echo(f"    {b['label']:<34} {b['type']:<4}  {_when(b['stop'])}  {_size(b['size']):>9} → "
                    f"{_size(b['stored'])}")
        archive, restorable = p["archive"], p["restorable"]
        if archive["max"]:
            newest = archive["newest_archived_at"]
            age = f", newest archived {_when(newest)} (age {format_duration(now - newest)})" if newest else ""
            ap.echo(f"    WAL archive {archive['min']} … {archive['max']}{age}")
        if restorable["from"] is not None and restorable["to"] is not None:
            ap.echo(f"    restorable with --at from {_utc(restorable['from'])} to {_utc(restorable['to'])}")
    for r in doc["problems"]:
        error = (r["detail"] or {}).get("error") or ""
        ap.echo(f"  {r['status'].upper()}: {r['source']} at {_when(r['started_at'])} {error}".rstrip())


@app.command()
def verify(ctx: typer.Context, env: Env, source: Source = None, json_out: Json = False,
           read_data_subset: Annotated[str | None, typer.Option(
               "--read-data-subset", help="Decrypt only this share of the chunks, e.g. 10%.")] = None,
           read_data: Annotated[bool, typer.Option(
               "--read-data", help="Decrypt every chunk (the default; restic's name for it).")] = False) -> None:
    """Check every manifest and checksum (all data decrypted unless --read-data-subset)."""
    from shipyard.cli.app import abort
    from shipyard.primitives.spec.durations import parse_percent

    if read_data and read_data_subset is not None:
        abort("give either --read-data or --read-data-subset, not both", 2)
    subset = None
    if read_data_subset is not None:
        try:
            subset = parse_percent(read_data_subset)
        except ValueError as exc:
            abort(f"--read-data-subset: {exc}", 2)
        if subset <= 0:
            abort("--read-data-subset must be more than 0%", 2)
    ap = _app(ctx, env)
    results = _long(ap, "backup verify", "/v1/backups/verify", {"env": env, "source": source, "subset": subset},
                    quiet=json_out)
    if json_out:
        ap.print_json(results)
    else:
        for r in results:
            if r["backup_id"] == "pgbackrest":
                state = (f"ok (pgBackRest verify: {r['detail']})" if r["ok"]
                         else f"FAILED (pgBackRest verify): {r['error']}")
            else:
                state = f"ok ({r['chunks_read']}/{r['chunks']} chunks read)" if r["ok"] else f"FAILED: {r['error']}"
            ap.echo(f"{r['repository']}  {r['source']:<12} {r['backup_id']}  {state}")
        if not results:
            ap.echo("no backups to verify")
    if not all(r["ok"] for r in results):
        raise SystemExit(1)


def _check_at(text: str) -> None:
    """``--at`` is read again, authoritatively, by the engine; this only refuses a typo up front."""
    from datetime import datetime

    from shipyard.cli.app import abort

    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        abort(f"--at {text!r} is not a time; write e.g. '2026-11-22 10:00:00+00' (ISO 8601 with a UTC offset)", 2)
    if at.tzinfo is None:
        abort(f"--at {text!r} has no UTC offset; add one, e.g. '{text.strip()}+00' for UTC "
              "(a point in time must not depend on the machine's time zone)", 2)


@app.command()
def restore(
    ctx: typer.Context,
    env: Env,
    source: Annotated[str, typer.Option("--source", "-s", help="The source to restore.")],
    backup_id: Annotated[str | None, typer.Option("--backup", help="Backup id (default: newest).")] = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="URL of a target database: postgresql://, mysql:// or redis://.")] = None,
    to_path: Annotated[Path | None, typer.Option("--to-path", help="Target file or directory.")] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="Point in time, e.g. '2026-11-22 10:00:00+00' (sources with pitr = true).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Allow overwriting existing data.")] = False,
    json_out: Json = False,
) -> None:
    """Restore a backup to a new target, or over the original with --yes; --at: to a point in time."""
    import os

    from shipyard.cli.app import abort

    if to and to_path:
        abort("give either --to or --to-path, not both", 2)
    if at is not None:
        _check_at(at)
    if not to and not to_path and not yes:
        abort(f"restoring over the original of source {source!r} replaces its data; pass --yes "
              "(or restore elsewhere with --to / --to-path)", 3)
    ap = _app(ctx, env)
    # --to-path is relative to where the command runs, not to the control plane.
    body = {"env": env, "source": source, "backup": backup_id, "to": to, "at": at, "yes": yes,
            "to_path": os.path.abspath(to_path) if to_path is not None else None}
    result = _long(ap, "backup restore", "/v1/backups/restore", body, quiet=json_out)
    if json_out:
        ap.print_json(result)
    else:
        ap.echo(f"restored {source} from {result['backup_id']} into {result['target']} in "
                f"{result['duration_s']:.1f}s")
        for c in result["checks"]:
            ap.echo(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['name']} {c['detail']}")
        if result.get("note"):
            ap.echo(result["note"])
    if not result["ok"]:
        raise SystemExit(1)


@app.command()
def forget(ctx: typer.Context, env: Env, source: Source = None, json_out: Json = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False) -> None:
    """Remove backups the retention policy does not keep (restic semantics)."""
    ap = _app(ctx, env)
    results = ap.client.call("POST", "/v1/backups/forget", {"env": env, "source": source, "dry_run": dry_run},
                             timeout=IDLE_TIMEOUT_S)
    if json_out:
        ap.print_json(results)
        return
    verb = "would remove" if dry_run else "removed"
    for r in results:
        # Newest first, as the policy decided (backup ids begin with their UTC time).
        decisions = [(k["id"], f"keep ({', '.join(k['reasons'])})") for k in r["keep"]] + \
                    [(i, verb) for i in r["remove"]]
        for backup_id, what in sorted(decisions, reverse=True):
            ap.echo(f"{r['repository']}  {r['source']:<12} {backup_id}  {what}")


@app.command()
def drill(ctx: typer.Context, env: Env, source: Source = None, json_out: Json = False) -> None:
    """Restore the newest backups into scratch targets, check them, measure RTO/RPO; exit 1 if missed."""
    ap = _app(ctx, env)
    backup = ap.env(env).backup
    objectives = {"rto_s": backup.rto if backup else None, "rpo_s": backup.rpo if backup else None}
    results = _long(ap, "backup drill", "/v1/backups/drill", {"env": env, "source": source}, quiet=json_out)
    for r in results:
        r["objectives"] = objectives
    if json_out:
        ap.print_json(results)
    else:
        for r in results:
            measured = "  ".join(_against(name, r[f"{name}_s"], objectives[f"{name}_s"], r["checks"])
                                 for name in ("rto", "rpo"))
            ap.echo(f"{r['source']:<12} {'ok' if r['ok'] else 'FAILED'}  {measured}")
            if backup and r.get("repository") in backup.copy_to:
                ap.echo(f"  restored from the copy at {r['repository']} (the repository is unreachable)")
            for c in r["checks"]:
                if not c["ok"]:
                    ap.echo(f"  FAIL {c['name']}: {c['detail']}")
    if not all(r["ok"] for r in results):
        raise SystemExit(1)


def _against(name: str, measured: float | None, objective: float | None, checks: list[dict[str, Any]]) -> str:
    """``RTO 3.1 s (objective 15m) ok``: the measure beside its objective, and whether it met it."""
    from shipyard.primitives.spec.durations import format_duration

    if measured is None:
        value = "-"
    elif measured < 120:
        value = f"{measured * 1000:.0f} ms" if measured < 1 else f"{measured:.1f} s"
    else:
        value = format_duration(measured)
    if objective is None:
        return f"{name.upper()} {value} (no objective)"
    check = next((c for c in checks if c["name"] == name), None)
    verdict = "MISSED" if (check is not None and not check["ok"]) or measured is None else "ok"
    return f"{name.upper()} {value} (objective {format_duration(objective)}) {verdict}"
