"""Gathering a plan's inputs — the only I/O before ``prepare``: the environment's state, the release
index, git, the history and the secrets' names. The spec snapshot comes from the caller."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.control.paths import Paths
from shipyard.control.releases import ReleaseService
from shipyard.control.target import Targets
from shipyard.engine.releases import commits_between, resolve_ref
from shipyard.engine.rollout.launch import Launch
from shipyard.engine.rollout.plan import CommitInfo, History, Kind, PlanInputs, ReleaseChoice, SecretsInfo
from shipyard.engine.rollout.promotion import ServiceRecord
from shipyard.engine.rollout.state import EnvState, InstanceView
from shipyard.errors import BadInput, NotFound, ShipyardError
from shipyard.primitives.clock import Clock
from shipyard.primitives.spec import Spec
from shipyard.primitives.spec.secrets import SecretStore
from shipyard.primitives.store import Store


@dataclass(frozen=True)
class DeployRequest:
    kind: Kind
    env: str
    ref: str | None = None
    release: str | None = None
    strategy: str | None = None
    to: str | None = None  # rollback target
    from_env: str | None = None  # deploy --from ENV: the release serving there


class InputGatherer:
    def __init__(self, *, paths: Paths, store: Store, releases: ReleaseService, targets: Targets,
                 secrets: SecretStore, clock: Clock) -> None:
        self.paths, self.store, self.releases, self.clock = paths, store, releases, clock
        self.targets, self.secrets = targets, secrets

    def gather(self, req: DeployRequest, spec: Spec) -> PlanInputs:
        spec.env(req.env)  # unknown environment → clear error
        state = self.env_state(req.env)
        choice = self._deploy_target(req) if req.kind == "deploy" else self._rollback_target(req.env, req.to, state)
        envspec = spec.env(req.env)
        policy = envspec.promotion if req.kind == "deploy" else None
        source_env = req.from_env or (policy.from_ if policy is not None else None)
        return PlanInputs(kind=req.kind, env=req.env, spec=spec, state=state, release=choice,
                          promote_from=req.from_env,
                          source=self.service_record(policy.from_, choice.id) if policy is not None else None,
                          source_secrets=tuple(self.secrets.names(source_env)) if source_env else (),
                          history=self.history(req.env), strategy=req.strategy,
                          secrets=SecretsInfo(tuple(sorted(self.secrets.names(req.env))),
                                              self.secrets.version(req.env)),
                          commits=self._commits(state.current_release, choice.commit.sha), now=self._now())

    def _now(self) -> float:
        return self.clock.time()

    def env_state(self, env: str) -> EnvState:
        rec = self.store.get_environment(env)
        rt = self.targets.get(env).routing
        insts = tuple(InstanceView(s.id, s.release, bool(s.ready) and s.id not in rt.unrouted, rt.role(s.release),
                                   s.process) for s in rt.instances())
        return EnvState(env=env, current_release=rec.current_release if rec else None,
                        previous_release=rec.previous_release if rec else None, instances=insts,
                        weights=dict(rt.weights))

    def _deploy_target(self, req: DeployRequest) -> ReleaseChoice:
        if req.from_env:
            if req.ref or req.release:
                raise BadInput("give --from alone: it deploys the release serving that environment")
            rec_env = self.store.get_environment(req.from_env)
            serving = rec_env.current_release if rec_env else None
            if not serving:
                raise BadInput(f"{req.from_env} serves nothing: there is no release to promote "
                               f"(deploy to {req.from_env} first)")
            req = DeployRequest(req.kind, req.env, release=serving, strategy=req.strategy)
        if req.release:
            rec = self.releases.get(req.release)
            if rec is None or rec.status != "ready":
                raise NotFound(f"release '{req.release}' not found (see 'shipyard releases')")
            return ReleaseChoice(req.release, CommitInfo(rec.commit, rec.commit[:12], rec.message, rec.author))
        ref = req.ref or "HEAD"
        commit = resolve_ref(self.paths.project, ref)
        info = CommitInfo(commit.sha, commit.short, commit.message, commit.author, commit.committed_at)
        existing = self.releases.for_commit(commit.sha)
        if existing:
            return ReleaseChoice(existing, info, ref=ref)
        return ReleaseChoice(self.releases.new_id(commit), info, build=True, ref=ref)

    def _rollback_target(self, env: str, to: str | None, state: EnvState) -> ReleaseChoice:
        if state.current_release is None:
            raise BadInput(f"nothing is deployed on {env} yet")
        target = to or state.previous_release or self.previous_succeeded(env, state.current_release)
        if not target:
            raise BadInput(f"no earlier release to roll back to on {env} (see 'shipyard history --env {env}')")
        rec = self.releases.get(target)
        if rec is None:
            raise NotFound(f"release '{target}' not found (see 'shipyard releases')")
        if not self.releases.on_disk(target):
            raise BadInput(f"release {target} was pruned from disk; deploy it again with --ref {rec.commit[:12]}")
        return ReleaseChoice(target, CommitInfo(rec.commit, rec.commit[:12], rec.message, rec.author))

    def service_record(self, env: str, release: str) -> ServiceRecord:
        """How long ``release`` served ``env`` (longest continuous stretch) and whether it passed verify there."""
        deps = [d for d in reversed(self.store.list_deployments(env, limit=1000))
                if d.status == "succeeded" and d.finished_at is not None]
        longest: float | None = None
        cur: str | None = None
        since = 0.0
        verified = False
        for d in deps:
            if d.release == release and not verified:
                verified = any(s.name == "verify" and s.status == "succeeded" for s in self.store.list_steps(d.id))
            if d.release != cur:
                if cur == release:
                    longest = max(longest or 0.0, float(d.finished_at or 0.0) - since)
                cur, since = d.release, float(d.finished_at or 0.0)
        serving_since = None
        rec = self.store.get_environment(env)
        if cur == release and rec is not None and rec.current_release == release:
            serving_since = since
            longest = max(longest or 0.0, self.clock.time() - since)
        return ServiceRecord(longest, serving_since, verified)

    def previous_succeeded(self, env: str, current: str) -> str | None:
        for dep in self.store.list_deployments(env, limit=100):
            if dep.status == "succeeded" and dep.release != current:
                return str(dep.release)
        return None

    def history(self, env: str) -> History:
        deps = self.store.list_deployments(env, limit=100)
        last_ok = next((d for d in deps if d.status == "succeeded"), None)
        launches: dict[str, Launch] = {}
        for dep in reversed(deps):  # newest last, so it wins
            if dep.detail and dep.detail.get("launch"):
                launches[dep.release] = Launch.from_json(dep.detail["launch"])
        launches.update(self.targets.get(env).routing.launch)
        durations: dict[str, list[float]] = {}
        for dep in deps[:10]:
            for st in self.store.list_steps(dep.id):
                if st.status == "succeeded" and st.duration_s is not None:
                    durations.setdefault(st.name, []).append(st.duration_s)
        detail = (last_ok.detail or {}) if last_ok else {}
        return History(config=detail.get("config"), secrets=detail.get("secrets"), launches=launches,
                       durations={k: tuple(v) for k, v in durations.items()},
                       build_estimate=self.releases.build_estimate())

    def _commits(self, current: str | None, new_sha: str) -> tuple[CommitInfo, ...] | None:
        prev = self.releases.get(current) if current else None
        if prev is None or not prev.commit or prev.commit == new_sha:
            return None
        try:
            found = commits_between(self.paths.project, prev.commit, new_sha)
        except ShipyardError:
            return ()
        return tuple(CommitInfo(c.sha, c.short, c.message, c.author) for c in found)
