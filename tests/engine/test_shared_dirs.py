"""Shared dirs per environment: work dirs over a release, and the migration of the old layout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shipyard.engine.releases import RELEASE_META, BuiltRelease, build_release, instance_dir
from shipyard.errors import BadInput
from shipyard.primitives.clock import SystemClock


def build(repo: Any, state: Path, ref: str = "HEAD", **kw: Any) -> BuiltRelease:
    args: dict[str, Any] = {"build_cmds": [], "shared": [], "clock": SystemClock()}
    args.update(kw)
    return build_release(project_dir=repo.path, state_dir=state, ref=ref, **args)


def test_shared_dirs_are_per_environment_and_persist_across_releases(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    # The commit ships an instance/ dir of its own: it is not part of the release.
    example_repo.commit("ship placeholder", {"instance/placeholder.txt": "from git", "var/keep.txt": "x"})
    shared = ["instance", "var/uploads"]
    r1 = build(example_repo, state, ref="HEAD", shared=shared)
    assert not (r1.path / "instance").exists() and not (r1.path / "var" / "uploads").exists()
    assert (r1.path / "var" / "keep.txt").exists()

    staging, prod = instance_dir(state, "staging", r1.id), instance_dir(state, "production", r1.id)
    assert staging != prod != r1.path
    for env, wd in (("staging", staging), ("production", prod)):
        assert (wd / "instance").resolve() == (state / "shared" / env / "instance").resolve()
        assert (wd / "var" / "uploads").resolve() == (state / "shared" / env / "var" / "uploads").resolve()
        assert not os.readlink(wd / "instance").startswith("/")  # relative: the project can move
        assert not (wd / "instance" / "placeholder.txt").exists()
        # The release's files, hard-linked: code that resolves its own path finds the env's dirs beside it.
        assert (wd / "app.py").stat().st_ino == (r1.path / "app.py").stat().st_ino
        assert not (wd / "app.py").is_symlink()
        (Path(os.path.realpath(wd / "app.py")).parent / "instance" / f"{env}.db").write_text(env)
    assert sorted(p.name for p in (state / "shared" / "staging" / "instance").iterdir()) == ["staging.db"]
    assert sorted(p.name for p in (state / "shared" / "production" / "instance").iterdir()) == ["production.db"]

    example_repo.commit("v2", {"VERSION": "v2\n"})
    r2 = build(example_repo, state, ref="HEAD", shared=shared)
    assert r2.id != r1.id
    assert (instance_dir(state, "staging", r2.id) / "instance" / "staging.db").read_text() == "staging"
    assert instance_dir(state, "staging", r2.id) == instance_dir(state, "staging", r2.id)  # made once

    plain = build(example_repo, state, ref="HEAD")
    assert instance_dir(state, "staging", plain.id) == plain.path  # no shared dirs: the release itself
    for bad in ("../escape", "/abs"):
        with pytest.raises(BadInput, match="app.shared"):
            build(example_repo, state, ref="HEAD", shared=[bad])


def _legacy_tree(root: Path) -> None:
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "app.db").write_bytes(os.urandom(300_000))
    (root / "app.db-wal").write_bytes(b"")
    (root / "nested" / "deeper" / "blob.bin").write_bytes(bytes(range(256)) * 50)
    (root / "nested" / "link").symlink_to("deeper/blob.bin")
    os.chmod(root / "nested" / "deeper" / "blob.bin", 0o600)


def _tree(root: Path) -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                out[rel] = ("L", os.readlink(full).encode())
            elif full.is_dir():
                out[rel] = ("D", b"")
            else:
                out[rel] = (oct(full.stat().st_mode), full.read_bytes())
    return out


def test_an_old_shared_dir_is_copied_to_each_environment_without_losing_a_byte(
    example_repo: Any, tmp_path: Path
) -> None:
    # The layout before shared dirs were per environment: .shipyard/shared/instance, linked into the
    # release, its metadata without "shared".
    state = tmp_path / "state"
    old = build(example_repo, state, ref="HEAD")
    meta_path = old.path / RELEASE_META
    meta = json.loads(meta_path.read_text())
    del meta["shared"]
    meta_path.write_text(json.dumps(meta))
    legacy = state / "shared" / "instance"
    legacy.mkdir(parents=True)
    _legacy_tree(legacy)
    (old.path / "instance").symlink_to("../../shared/instance")
    before = _tree(legacy)

    staging = instance_dir(state, "staging", old.id)
    (staging / "instance" / "staging-only.txt").write_text("s")
    prod = instance_dir(state, "production", old.id)
    for env in ("staging", "production"):
        copy = _tree(state / "shared" / env / "instance")
        copy.pop("staging-only.txt", None)
        assert copy == before, env
    assert _tree(legacy) == before  # the original stays, untouched
    assert not (prod / "instance" / "staging-only.txt").exists()
    assert json.loads((state / "shared" / ".layout.json").read_text())["legacy"] == ["instance"]

    # Idempotent: a new release in staging keeps staging's data, nothing is copied again.
    new = build(example_repo, state, ref="HEAD", shared=["instance"])
    assert (instance_dir(state, "staging", new.id) / "instance" / "staging-only.txt").read_text() == "s"
    assert _tree(legacy) == before


def test_a_fresh_project_records_no_old_shared_dirs(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    r = build(example_repo, state, ref="HEAD", shared=["staging"])
    instance_dir(state, "staging", r.id)
    # A shared dir named like an environment is no old dir once the layout is recorded.
    assert json.loads((state / "shared" / ".layout.json").read_text())["legacy"] == []
    assert (state / "shared" / "staging" / "staging").is_dir()
    assert instance_dir(state, "production", r.id) != instance_dir(state, "staging", r.id)
