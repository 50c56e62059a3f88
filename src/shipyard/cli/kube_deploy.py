"""deploy / rollback / export for environments with ``target = "kubernetes"``: run from the CLI against the
cluster, which is the long-lived owner there (no local control plane is needed; the release records live
in the cluster, control/kube/records.py). Helper of cli/deploy.py, cli/rollback.py, cli/export_kubernetes.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from shipyard.cli.app import AppContext
from shipyard.cli.client import performer_name
from shipyard.control.kube import records
from shipyard.control.kube.cluster import Cluster
from shipyard.control.kube.deployer import KubeDeployer, KubeResult
from shipyard.control.kube.state import StateDB
from shipyard.engine.kube import dockerfile
from shipyard.engine.kube.render import ReleaseInput, k8s_name
from shipyard.engine.releases import new_release_id, resolve_ref, valid_release_id
from shipyard.errors import BadInput
from shipyard.primitives.clock import SystemClock
from shipyard.primitives.spec.envvars import dotenv_path, read_dotenv
from shipyard.primitives.spec.secrets import SecretStore

T = TypeVar("T")


def release_input(app: AppContext, env: str, release: str, *, with_secrets: bool = True) -> ReleaseInput:
    spec, envspec = app.spec, app.env(env)
    if envspec.kube.prometheus is None and spec.metrics.prometheus:  # a canary's analysis queries it
        envspec = envspec.model_copy(update={"kubernetes": envspec.kube.model_copy(
            update={"prometheus": spec.metrics.prometheus})})
    config = {**envspec.env, **read_dotenv(dotenv_path(app.project.dir, env))}
    store = SecretStore(app.project.state_dir)
    secrets = store.values(env) if with_secrets else {}
    return ReleaseInput(app=spec.app, env=envspec, release=release, config=config, secrets=secrets,
                        secrets_version=store.version(env))


def new_release(app: AppContext, ref: str | None) -> str:
    commit = resolve_ref(app.project.dir, ref or "HEAD")
    return new_release_id(commit, SystemClock().time(), lambda _id: False)


def chosen_release(app: AppContext, env: str, ref: str | None, release: str | None,
                   from_env: str | None) -> tuple[str, str | None]:
    """The release to deploy and the image it references: an image built of it (``shipyard image build``) by
    its digest, else None (the ``kubernetes.image`` pattern). ``--ref``: the newest image built of that
    commit, else a new release id."""
    with StateDB(app.project.state_dir) as db:
        if from_env is not None:
            app.env(from_env)  # an unknown environment is bad input
            release = db.serving(from_env)
            if release is None:
                raise BadInput(f"--from {from_env}: no release serves there (see 'shipyard history --env {from_env}')")
        if release is not None:
            if not valid_release_id(release):
                raise BadInput(f"--release: invalid release id {release!r}")
            img = db.image(release)
            return release, img.pinned if img else None
        try:
            repo = dockerfile.repository(app.env(env).kube.image, k8s_name(app.spec.app.name, 63))
        except BadInput:  # a pattern no build makes (pinned by hand): deployed as written
            return new_release(app, ref), None
        img = db.newest_image(resolve_ref(app.project.dir, ref or "HEAD").sha, repo)
    if img is not None:
        return img.release, img.pinned
    return new_release(app, ref), None


def performer() -> str:
    """Who a kube command's rows name: the CLI acts for its user (no control plane identity is involved)."""
    return f"local ({performer_name()})"


def audit(app: AppContext, action: str, env: str, target: str | None, detail: dict[str, Any]) -> None:
    """One audit row for a kube ``run`` / canary command, in the state database (deploys and rollbacks get
    theirs from KubeHistory). The command has happened by then: a database that fails is a warning."""
    try:
        with StateDB(app.project.state_dir) as db:
            db.audit(SystemClock().time(), performer(), action, env, target, detail)
    except Exception as exc:  # noqa: BLE001 - the command's outcome stands; the lost row is said
        app.warn(f"the {action} on {env} could not be audited: {exc}")


def _run(app: AppContext, env: str, body: Callable[[KubeDeployer], Awaitable[T]], quiet: bool) -> T:
    envspec = app.env(env)
    cluster = Cluster.connect(envspec.kube, app.project.dir, env)

    async def main() -> T:
        try:
            deployer = KubeDeployer(cluster, SystemClock(), (lambda line: None) if quiet else
                                    (lambda line: app.echo(f"  {line}", stderr=True)))
            return await body(deployer)
        finally:
            await cluster.close()

    return asyncio.run(main())


def _report(app: AppContext, res: KubeResult, deployment: int, as_json: bool) -> int:
    if as_json:
        app.print_json({**res.to_json(), "deployment": deployment})
    else:
        app.echo(f"{res.kind} of {res.release} to {res.env}: {res.outcome}"
                 + (f" — {res.reason}" if res.reason else ""))
        for name in res.pruned:
            app.echo(f"  pruned {name}")
    return 0 if res.outcome == "succeeded" else 1


def deploy(app: AppContext, env: str, ref: str | None, plan: bool, as_json: bool, *, release: str | None = None,
           from_env: str | None = None) -> int:
    rel, image = chosen_release(app, env, ref, release, from_env)
    inp = replace(release_input(app, env, rel), image=image)
    if inp.env.strategy == "canary":
        from shipyard.engine.kube.canary_analysis import unmapped

        for key in unmapped(inp.env.rollback):  # on stderr, so a --json document stays whole
            app.warn(f"environments.{env}.rollback.{key} is not judged on kubernetes (no AnalysisTemplate "
                     "metric; write it as a [rollback] prometheus query — docs/kubernetes.md, Canary)")
    if plan:
        doc = _run(app, env, lambda d: d.plan(inp), as_json)
        _print_plan(app, doc, as_json)
        return 0
    async def release_of(d: KubeDeployer) -> str:
        return rel

    return _report(app, *_recorded(app, env, "deploy", release_of, lambda d: d.deploy(inp), as_json), as_json)


def _recorded(app: AppContext, env: str, kind: str, release_of: Callable[[KubeDeployer], Awaitable[str]],
              body: Callable[[KubeDeployer], Awaitable[KubeResult]], quiet: bool) -> tuple[KubeResult, int]:
    """Run ``body`` as a deployment recorded in the state database (control/kube/state.py)."""
    with StateDB(app.project.state_dir) as db:
        hist = db.history(SystemClock(), performer())

        async def recorded(d: KubeDeployer) -> tuple[KubeResult, int]:
            return await hist.run(env, kind, await release_of(d), app.env(env).strategy, [], lambda: body(d))

        return _run(app, env, recorded, quiet)


def rollback(app: AppContext, env: str, to: str | None, plan: bool, as_json: bool) -> int:
    def inp_of(rel: str) -> ReleaseInput:
        return release_input(app, env, rel, with_secrets=False)

    if plan:
        _print_plan(app, _run(app, env, lambda d: d.plan_rollback(inp_of, to), as_json), as_json)
        return 0
    async def target(d: KubeDeployer) -> str:
        """The release rolled back to, as the cluster's record names it (the recorded row says which)."""
        return to or (await records.read_env(d.cluster, inp_of("").base)).previous or "-"

    return _report(app, *_recorded(app, env, "rollback", target, lambda d: d.rollback(inp_of, to), as_json), as_json)


def _print_plan(app: AppContext, doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        app.print_json(doc)
        return
    app.echo(f"plan: {doc.get('kind', 'deploy')} {doc['release']} to {doc['env']} (namespace {doc['namespace']}, "
             f"serving {doc['serving'] or 'nothing'}) — server-side dry run, nothing changed")
    for i, step in enumerate(doc["steps"], 1):
        app.echo(f"  {i}. {step['kind']}")
    for obj in doc["objects"]:
        app.echo(f"  {obj['action']:9} {obj['object']}")
        for c in obj["changes"]:
            app.echo(f"      {c['path']}: {c['before']!r} → {c['after']!r}")
    for name in doc["prune"]:
        app.echo(f"  prune     {name}")

