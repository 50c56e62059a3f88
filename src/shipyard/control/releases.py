"""The release service: the one catalog of built releases (state database + ``.shipyard/releases/``),
their ids, their builds, and pruning.

A release being deployed is protected from pruning for the deployment's duration (``protect``);
serving and warm releases are never pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from shipyard.control.paths import Paths
from shipyard.engine.gitrepo import Commit
from shipyard.engine.releases import CacheRule, build_release, new_release_id, prune_releases
from shipyard.primitives.clock import Clock
from shipyard.primitives.store import Store
from shipyard.primitives.store.records import ReleaseRec


def cache_rules(snapshot: Mapping[str, Any]) -> list[CacheRule]:
    """``app.build_cache`` of the spec the release is built with (the snapshot recorded with it: the same
    ``app`` table in every environment's part)."""
    for part in snapshot.values():
        return [CacheRule(path=str(c["path"]), key=tuple(str(k) for k in c["key"]))
                for c in (part.get("app") or {}).get("build_cache") or []]
    return []


class ReleaseService:
    def __init__(self, paths: Paths, store: Store, clock: Clock) -> None:
        self.paths = paths
        self.store = store
        self.clock = clock
        self._durations: list[float] = []
        self._protected: dict[str, int] = {}

    def on_disk(self, release: str) -> bool:
        return self.paths.release_dir(release).is_dir()

    def for_commit(self, sha: str) -> str | None:
        """A ready release of ``sha`` that is still on disk (a deploy of it needs no build)."""
        for rec in self.store.list_releases():
            if rec.commit == sha and rec.status == "ready" and self.on_disk(rec.id):
                return str(rec.id)
        return None

    def get(self, release: str) -> ReleaseRec | None:
        return self.store.get_release(release)

    def new_id(self, commit: Commit) -> str:
        """Stamped with the commit's time, not the build's: the same commit gets the same id in ``--plan``
        and in the deploy that follows (ids then sort by commit time)."""
        return new_release_id(commit, commit.committed_at or self.clock.time(),
                              lambda rid: self.store.get_release(rid) is not None or self.on_disk(rid))

    async def build(self, release: str, ref: str, *, build_cmds: list[str], shared: list[str],
                    snapshot: Mapping[str, Any], secrets_version: int, on_output: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()

        def out(line: str) -> None:
            loop.call_soon_threadsafe(on_output, line)

        built = await asyncio.to_thread(
            build_release, project_dir=self.paths.project, state_dir=self.paths.state, ref=ref,
            build_cmds=build_cmds, shared=shared, clock=self.clock, release_id=release, on_output=out,
            cache=cache_rules(snapshot))
        self._durations.append(built.build_duration_s)
        self.store.add_release(ReleaseRec(
            id=built.id, commit=built.commit.sha, ref=ref, message=built.commit.message,
            author=built.commit.author, created_at=self.clock.time(), build_duration_s=built.build_duration_s,
            content_hash=built.content_hash, spec=dict(snapshot), secrets_version=secrets_version,
            build_log=str(built.build_log), status="ready"))

    def build_estimate(self) -> float:
        if self._durations:
            return round(sum(self._durations) / len(self._durations), 2)
        recs = [r.build_duration_s for r in self.store.list_releases()[:5] if r.build_duration_s]
        return round(sum(recs) / len(recs), 2) if recs else 2.0

    @contextlib.contextmanager
    def protect(self, release: str) -> Iterator[None]:
        """Keep ``release`` from being pruned while the block runs (a deployment of it)."""
        self._protected[release] = self._protected.get(release, 0) + 1
        try:
            yield
        finally:
            self._protected[release] -= 1
            if not self._protected[release]:
                del self._protected[release]

    def prune(self, keep_newest: int, serving: Iterable[str]) -> list[str]:
        keep = set(serving) | set(self._protected)
        for env in self.store.list_environments():
            keep.update(r for r in (env.current_release, env.previous_release) if r)
        ids = [r.id for r in self.store.list_releases()]
        removed = prune_releases(self.paths.state, keep, keep_newest, ids)
        for rid in removed:
            self.store.delete_release(rid)
        return removed
