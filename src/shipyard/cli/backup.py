"""shipyard backup run|list|verify|restore|forget|drill: encrypted backups of an environment's data."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from shipyard.cli.common import Project
    from shipyard.engine.backup import Backups

app = typer.Typer(help="Back up an environment's data, verify it, restore it and prove it with drills.",
                  no_args_is_help=True)

Env = Annotated[str, typer.Option("--env", "-e", help="Environment.")]
Source = Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _open(env: str, *, create_key: bool = False) -> tuple[Project, Backups]:
    from shipyard.cli.common import find_project, load_project_spec
    from shipyard.engine.backup import Backups, load_key
    from shipyard.errors import BadInput
    from shipyard.primitives.spec.secrets import SecretStore

    project = find_project()
    spec = load_project_spec(project)
    backup = spec.env(env).backup
    if backup is None:
        raise BadInput(f"environment {env!r} has no backups configured ([environments.{env}.backup])")
    secret = SecretStore(project.state_dir).values(env).get("BACKUP_KEY")
    key = load_key(secret, project.state_dir / "backup.key", create=create_key)
    return project, Backups(backup, key, base_dir=spec.project_dir)


def _record(project: Project, what: str, fn: Any) -> None:
    """Records in the state store; a store problem is reported but does not undo the work done."""
    from shipyard.errors import ShipyardError
    from shipyard.primitives.store import open_store

    try:
        store = open_store(None, project.state_dir)
        try:
            fn(store)
        finally:
            store.close()
    except ShipyardError as exc:
        print(f"warning: could not record the {what}: {exc}", file=sys.stderr)


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
def run(env: Env, source: Source = None, json_out: Json = False) -> None:
    """Back up every source now (or one), replicate to copy_to, and record the run."""
    from shipyard.cli.common import print_json

    project, backups = _open(env, create_key=True)
    results = backups.run(source)

    def record(store: Any) -> None:
        for r in results:
            store.add_backup_run(env, r.source, status="ok" if r.ok else "failed", started_at=r.started_at,
                                 finished_at=r.started_at + r.duration_s, backup_id=r.backup_id,
                                 detail=r.to_dict())

    _record(project, "backup run", record)
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            if r.backup_id and r.pitr:
                print(f"{r.source:<12} ok  {r.backup_id}  pgBackRest {r.pitr['type']}  {_size(r.plain_size)} cluster, "
                      f"{_size(r.stored_size)} stored  {r.duration_s:.1f}s")
                for note in r.pitr.get("notes", []):
                    print(f"  {note}")
            elif r.backup_id:
                copies = "".join(f"  copy {c.repository}: {'ok' if c.ok else c.error}" for c in r.copies)
                print(f"{r.source:<12} {'ok' if r.ok else 'FAILED'}  {r.backup_id}  {_size(r.plain_size)} → "
                      f"{_size(r.stored_size)} stored  {r.duration_s:.1f}s{copies}")
            else:
                print(f"{r.source:<12} FAILED  {r.error}")
    if not all(r.ok for r in results):
        raise SystemExit(1)


@app.command("list")
def list_(env: Env, source: Source = None, json_out: Json = False) -> None:
    """List complete backups (newest last) and recent failed or missed scheduled runs."""
    from shipyard.cli.common import print_json
    from shipyard.primitives.spec.durations import format_duration

    project, backups = _open(env)
    manifests = backups.list_backups(source)
    pitr = backups.pitr_status(source)
    problems: list[Any] = []

    def read(store: Any) -> None:
        problems.extend(r for r in store.list_backup_runs(env, limit=20)
                        if r.status != "ok" and (source is None or r.source == source))

    _record(project, "run history lookup", read)
    now = time.time()
    if json_out:
        print_json({"env": env, "repository": str(backups.repo.root),
                    "backups": [{"id": m.id, "source": m.source, "kind": m.kind, "created_at": m.created_at,
                                 "snapshot_time": m.snapshot_time, "plain_size": m.plain_size,
                                 "stored_size": m.stored_size, "meta": m.meta} for m in manifests],
                    "pitr": [p.to_dict() for p in pitr],
                    "problems": [{"source": r.source, "status": r.status, "started_at": r.started_at,
                                  "detail": r.detail} for r in problems]})
        return
    print(f"repository {backups.repo.root}")
    for m in manifests:
        print(f"  {m.source:<12} {m.id}  {_when(m.created_at)}  age {format_duration(now - m.snapshot_time):>6}  "
              f"{_size(m.plain_size):>9} → {_size(m.stored_size)}")
    if not manifests and not pitr:
        print("  no backups")
    for p in pitr:
        print(f"  {p.source:<12} pgBackRest {p.repository}" + (f"  {p.error}" if p.error else ""))
        for b in p.backups:
            print(f"    {b['label']:<34} {b['type']:<4}  {_when(b['stop'])}  {_size(b['size']):>9} → "
                  f"{_size(b['stored'])}")
        if p.archive_max:
            newest = p.newest_archived_at
            age = f", newest archived {_when(newest)} (age {format_duration(now - newest)})" if newest else ""
            print(f"    WAL archive {p.archive_min} … {p.archive_max}{age}")
        if p.restorable_from is not None and p.restorable_until is not None:
            print(f"    restorable with --at from {_utc(p.restorable_from)} to {_utc(p.restorable_until)}")
    for r in problems:
        error = (r.detail or {}).get("error") or ""
        print(f"  {r.status.upper()}: {r.source} at {_when(r.started_at)} {error}".rstrip())


@app.command()
def verify(env: Env, source: Source = None, json_out: Json = False,
           read_data_subset: Annotated[str | None, typer.Option(
               "--read-data-subset", help="Decrypt only this share of the chunks, e.g. 10%.")] = None) -> None:
    """Check every manifest and checksum (all data decrypted unless --read-data-subset)."""
    from shipyard.cli.common import print_json
    from shipyard.errors import BadInput
    from shipyard.primitives.spec.durations import parse_percent

    subset = None
    if read_data_subset is not None:
        try:
            subset = parse_percent(read_data_subset)
        except ValueError as exc:
            raise BadInput(f"--read-data-subset: {exc}") from None
        if subset <= 0:
            raise BadInput("--read-data-subset must be more than 0%")
    _, backups = _open(env)
    results = backups.verify(source, subset)
    if json_out:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            if r.backup_id == "pgbackrest":
                state = f"ok (pgBackRest verify: {r.detail})" if r.ok else f"FAILED (pgBackRest verify): {r.error}"
            else:
                state = f"ok ({r.chunks_read}/{r.chunks} chunks read)" if r.ok else f"FAILED: {r.error}"
            print(f"{r.repository}  {r.source:<12} {r.backup_id}  {state}")
        if not results:
            print("no backups to verify")
    if not all(r.ok for r in results):
        raise SystemExit(1)


@app.command()
def restore(
    env: Env,
    source: Annotated[str, typer.Option("--source", "-s", help="The source to restore.")],
    backup_id: Annotated[str | None, typer.Option("--backup", help="Backup id (default: newest).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="PostgreSQL URL of a target database.")] = None,
    to_path: Annotated[Path | None, typer.Option("--to-path", help="Target file or directory.")] = None,
    at: Annotated[str | None, typer.Option(
        "--at", help="Point in time, e.g. '2026-11-22 10:00:00+00' (sources with pitr = true).")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Allow overwriting existing data.")] = False,
    json_out: Json = False,
) -> None:
    """Restore a backup to a new target, or over the original with --yes; --at: to a point in time."""
    from shipyard.cli.common import print_json
    from shipyard.errors import BadInput, Refused

    if to and to_path:
        raise BadInput("give either --to or --to-path, not both")
    if at is not None:
        from shipyard.engine.backup.pitr import parse_at

        parse_at(at)  # a typo is reported before anything is opened
    if not to and not to_path and not yes:
        raise Refused(f"restoring over the original of source {source!r} replaces its data; pass --yes "
                      "(or restore elsewhere with --to / --to-path)")
    _, backups = _open(env)
    result = backups.restore(source, backup_id=backup_id, to_url=to, to_path=to_path, replace=yes, at=at)
    if json_out:
        print_json(result.to_dict())
    else:
        print(f"restored {source} from {result.backup_id} into {result.target} in {result.duration_s:.1f}s")
        for c in result.checks:
            print(f"  {'ok  ' if c.ok else 'FAIL'} {c.name} {c.detail}")
        if result.note:
            print(result.note)
    if not result.ok:
        raise SystemExit(1)


@app.command()
def forget(env: Env, source: Source = None, json_out: Json = False,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False) -> None:
    """Remove backups the retention policy does not keep (restic semantics)."""
    from shipyard.cli.common import print_json

    _, backups = _open(env)
    results = backups.forget(source, dry_run=dry_run)
    if json_out:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        verb = "would remove" if dry_run else "removed"
        for d in r.decisions:
            print(f"{r.repository}  {r.source:<12} {d.id}  "
                  + (f"keep ({', '.join(d.reasons)})" if d.keep else verb))


@app.command()
def drill(env: Env, source: Source = None, json_out: Json = False) -> None:
    """Restore the newest backups into scratch targets, check them, measure RTO/RPO; exit 1 if missed."""
    from shipyard.cli.common import print_json
    from shipyard.engine.backup import run_drills

    project, backups = _open(env)
    results = run_drills(backups, source)
    ok = all(r.ok for r in results)
    docs = [r.to_dict() for r in results]
    started = min((r.started_at for r in results), default=time.time())
    _record(project, "drill", lambda store: store.add_drill(env, ok=ok, started_at=started,
                                                            detail={"sources": docs}))
    if json_out:
        print_json(docs)
    else:
        for r in results:
            rto = "-" if r.rto_s is None else f"{r.rto_s:.1f}s"
            rpo = "-" if r.rpo_s is None else f"{r.rpo_s:.0f}s"
            print(f"{r.source:<12} {'ok' if r.ok else 'FAILED'}  RTO {rto}  RPO {rpo}")
            for c in r.checks:
                if not c.ok:
                    print(f"  FAIL {c.name}: {c.detail}")
    if not ok:
        raise SystemExit(1)
