"""shipyard run on an environment with ``target = "kubernetes"``: the command runs once as a Job in the
serving release (or ``--release``) — its image, config and secrets — talking to the API server directly,
no control plane. Its output goes to stdout, shipyard's notes to stderr; the exit code is the command's.
Helper of cli/run.py (engine/kube/run_job.py renders the Job, control/kube/runjob.py runs it)."""

from __future__ import annotations

import asyncio
import secrets
import shlex
import signal
import sys

from shipyard.cli.app import AppContext
from shipyard.errors import ShipyardError

DEFAULT_TIMEOUT = 3600.0  # the Job's activeDeadlineSeconds without --timeout


def run(app: AppContext, env: str, argv: list[str], *, release: str | None, interactive: bool,
        timeout: str | None, keep: bool) -> int:
    from shipyard.cli.kube_deploy import audit, release_input
    from shipyard.control.kube.cluster import Cluster
    from shipyard.control.kube.runjob import JobRun, RunResult, release_template
    from shipyard.engine.kube.run_job import run_id, run_job, template_container
    from shipyard.engine.releases import valid_release_id
    from shipyard.primitives.clock import SystemClock
    from shipyard.primitives.spec.durations import parse_duration

    if interactive:
        app.abort("-i/--interactive is not supported on kubernetes environments (no terminal is attached to the "
                  "Job's pod); run the command without -i, or 'kubectl exec -it' into a pod", 2)
    try:
        deadline = parse_duration(timeout) if timeout is not None else DEFAULT_TIMEOUT
    except ValueError as exc:
        app.abort(f"--timeout: {exc}", 2)
    if deadline < 1:
        app.abort(f"--timeout: at least 1s (the Job's activeDeadlineSeconds), got {timeout}", 2)
    if release is not None and not valid_release_id(release):
        app.abort(f"--release: invalid release id {release!r}", 2)
    clock = SystemClock()
    cluster = Cluster.connect(app.env(env).kube, app.project.dir, env)

    def note(line: str) -> None:
        app.echo(f"  {line}", stderr=True)

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    ran: dict[str, str] = {}  # the release and Job, once created: from then on the run is audited

    async def main() -> RunResult:
        # SIGTERM (a CI job cancelled) deletes the Job as Ctrl-C does: both cancel this task.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await cluster.check()
            base = release_input(app, env, "", with_secrets=False).base
            rel, manifests = await release_template(cluster, base, env, release)
            inp = release_input(app, env, rel, with_secrets=False)
            job = run_job(inp, argv, deadline, run_id(clock.time(), secrets.token_hex(2)),
                          template=template_container(manifests), keep=keep)
            note(f"running in release {rel}")
            ran.update(release=rel, job=job["metadata"]["name"])
            return await JobRun(cluster, clock, out, note).run(job, keep=keep)
        finally:
            await cluster.close()

    def audited(code: int, reason: str | None = None) -> int:
        # As the control plane audits a local run: the command, its release, its exit code.
        if ran:
            audit(app, "run", env, ran["release"], {"command": shlex.join(argv), "exit_code": code, "job": ran["job"],
                                                    "namespace": cluster.namespace, "reason": reason})
        return code

    try:
        res = asyncio.run(main())
    except KeyboardInterrupt:
        app.echo("interrupted", stderr=True)
        return audited(130, "interrupted")
    except asyncio.CancelledError:
        app.echo("terminated", stderr=True)
        return audited(128 + signal.SIGTERM, "terminated")
    except ShipyardError as exc:  # the cluster failed under the run: said (exit 1, 2…) after its row
        audited(exc.exit_code, str(exc))
        raise
    audited(res.exit_code, res.reason)
    if res.reason:
        app.echo(f"job {res.job} failed: {res.reason}", stderr=True)
        for why in res.pods:
            app.echo(f"  {why}", stderr=True)
    if keep:
        note(f"job {res.job} kept (delete it with 'kubectl delete job {res.job} -n {cluster.namespace}')")
    return res.exit_code
