"""Immutable releases built from git refs: the one release catalog, id generator and path.

A release lives in ``release_dir(state_dir, id)`` = ``<state_dir>/releases/<id>/``. A build
(``build.build_release``) resolves the ref, streams ``git archive <sha>`` straight into that directory,
clears the ``app.shared`` paths, runs the ``app.build`` commands inside it through the shell
(``commands``), hashes the result (``content.content_hash``) and records it (with its shared dirs) in
``.shipyard-release.json``.

Shared dirs are per environment (``shared.env_shared_dir``: ``<state_dir>/shared/<env>/<name>/``) and a
release deploys to any environment, so its instances run in a per-environment work dir that links them
(``workdir.instance_dir``: ``<state_dir>/workdirs/<env>/<id>/``); ``shared`` also migrates the old
``<state_dir>/shared/<name>/`` layout, copying it to each environment.

The build runs in the release's final directory, not in a temporary one renamed at the end: builds
bake absolute paths into what they make (a virtualenv's script shebangs, generated configs), which a
rename would break. Completeness is marked instead: ``.shipyard-release.json`` is written (atomically)
last, and only a directory holding it is a release. A failed build removes its directory; one
interrupted by a crash is removed by ``remove_leftovers``.

Release ids are ``r<UTC yyyymmddHHMMSS>-<7-char short sha>`` (``-2``, ``-3``... appended while the
caller's ``taken`` predicate says the id is in use): unique, readable, and sorting them as strings sorts
them by build time (``catalog.new_release_id``).
"""

from __future__ import annotations

from shipyard.engine.gitrepo import Commit
from shipyard.engine.releases.build import DEFAULT_BUILD_TIMEOUT_S, build_release
from shipyard.engine.releases.cache import CacheRule
from shipyard.engine.releases.catalog import (
    BUILD_LOG,
    RELEASE_META,
    BuiltRelease,
    new_release_id,
    prune_releases,
    release_dir,
    releases_to_prune,
    remove_leftovers,
    valid_release_id,
)
from shipyard.engine.releases.content import content_hash
from shipyard.engine.releases.refs import commits_between, fetch_ref, resolve_ref
from shipyard.engine.releases.shared import env_shared_dir
from shipyard.engine.releases.workdir import instance_dir

__all__ = [
    "BUILD_LOG",
    "DEFAULT_BUILD_TIMEOUT_S",
    "RELEASE_META",
    "BuiltRelease",
    "CacheRule",
    "Commit",
    "build_release",
    "commits_between",
    "content_hash",
    "env_shared_dir",
    "instance_dir",
    "new_release_id",
    "prune_releases",
    "release_dir",
    "releases_to_prune",
    "remove_leftovers",
    "resolve_ref",
    "fetch_ref",
    "valid_release_id",
]
