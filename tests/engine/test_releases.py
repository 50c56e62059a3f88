"""Releases built from real throwaway git repositories, with real build commands."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine.releases import (
    BUILD_LOG,
    RELEASE_META,
    BuiltRelease,
    Commit,
    build_release,
    commits_between,
    content_hash,
    instance_dir,
    new_release_id,
    prune_releases,
    release_dir,
    releases_to_prune,
    remove_leftovers,
    resolve_ref,
)
from shipyard.errors import BadInput, DeployFailed, NotFound
from shipyard.primitives.clock import ManualClock, SystemClock
from shipyard.primitives.pgcluster import free_port

ID_RE = re.compile(r"^r\d{14}-[0-9a-f]{7,}(-\d+)?$")


def load_release(state_dir: Path, release_id: str) -> BuiltRelease:
    """A built release read back from its metadata; NotFound while the directory holds none."""
    path = state_dir.absolute() / "releases" / release_id
    try:
        data = json.loads((path / RELEASE_META).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise NotFound(f"release '{release_id}' not found") from exc
    return BuiltRelease(id=data["id"], path=path, commit=Commit(**data["commit"]), ref=data["ref"],
                        build_duration_s=float(data["build_duration_s"]), content_hash=data["content_hash"],
                        build_log=path / BUILD_LOG, built_at=float(data.get("built_at", 0.0)))


def list_releases(state_dir: Path) -> list[BuiltRelease]:
    """Complete releases (those with metadata) on disk, newest first."""
    root = state_dir.absolute() / "releases"
    found = [load_release(state_dir, e.name) for e in root.iterdir()
             if not e.name.startswith(".") and (e / RELEASE_META).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda r: (r.built_at, r.id), reverse=True)


def build(repo: Any, state: Path, ref: str = "v1", **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {"build_cmds": [], "shared": [], "clock": SystemClock()}
    args.update(kw)
    return build_release(project_dir=repo.path, state_dir=state, ref=ref, **args)  # type: ignore[arg-type]


def test_build_from_tag_unpacks_commit_runs_build_and_serves(
    example_repo: Any, tmp_path: Path, wait_ok: Any
) -> None:
    state = tmp_path / ".shipyard"
    example_repo.write({"untracked.txt": "not committed"})  # the work tree must not leak into a release
    lines: list[str] = []
    rel = build(
        example_repo,
        state,
        build_cmds=["python3 -m compileall -q .", "echo built $SHIPYARD_RELEASE"],
        on_output=lines.append,
    )

    assert ID_RE.match(rel.id), rel.id
    assert rel.path == state.absolute() / "releases" / rel.id
    assert sorted(p.name for p in (state / "releases").iterdir()) == [rel.id]  # no .building-* left
    assert (rel.path / "app.py").read_text() == (example_repo.path / "app.py").read_text()
    assert (rel.path / "VERSION").read_text() == "v1\n"
    assert not (rel.path / "untracked.txt").exists()
    assert list((rel.path / "__pycache__").glob("app.*.pyc")), "build ran inside the release"

    assert rel.commit.sha == example_repo.rev("v1")
    assert rel.commit.short and rel.commit.sha.startswith(rel.commit.short)
    assert rel.commit.message == "example app v1"
    assert rel.commit.author == "Ada Tester <ada@example.com>"
    assert rel.commit.committed_at == float(example_repo.git("log", "-1", "--format=%ct", "v1"))
    assert rel.ref == "v1"
    assert rel.build_duration_s >= 0
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", rel.content_hash)

    log = rel.build_log.read_text()
    assert rel.build_log == rel.path / BUILD_LOG
    assert "$ python3 -m compileall -q ." in log and f"built {rel.id}" in log
    assert f"built {rel.id}" in lines and "$ echo built $SHIPYARD_RELEASE" in lines
    assert load_release(state, rel.id) == rel
    assert list_releases(state) == [rel]

    # The release is a runnable service on its own.
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAULT_", "APP_VERSION"))}
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=rel.path, env={**env, "PORT": str(port), "SHIPYARD_RELEASE": rel.id},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ok(port, "/")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        body = json.loads(conn.getresponse().read())
        conn.close()
        assert body["version"] == "v1" and body["release"] == rel.id
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_branch_sha_and_relative_refs_resolve(example_repo: Any) -> None:
    v1 = example_repo.rev("HEAD")
    v2 = example_repo.commit("second\n\nwith a body", {"VERSION": "v2\n"})
    assert resolve_ref(example_repo.path, "main").sha == v2
    assert resolve_ref(example_repo.path, "HEAD~1").sha == v1
    assert resolve_ref(example_repo.path, v1[:10]).sha == v1
    c = resolve_ref(example_repo.path, "v1")
    assert c.sha == v1 and c.subject == "example app v1"
    assert resolve_ref(example_repo.path, "HEAD").message == "second\n\nwith a body"


def test_unknown_ref_is_not_found_and_builds_nothing(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(NotFound, match=r"ref 'nope' not found in .*repo") as err:
        build(example_repo, state, ref="nope")
    assert err.value.exit_code == 2
    assert not (state / "releases").exists() or not list((state / "releases").iterdir())
    with pytest.raises(BadInput, match="invalid git ref"):
        resolve_ref(example_repo.path, "--output=/tmp/x")


def test_not_a_git_repository_is_bad_input(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(BadInput, match="not inside a git repository"):
        resolve_ref(plain, "main")
    with pytest.raises(BadInput, match="does not exist"):
        resolve_ref(tmp_path / "missing", "main")


def test_failing_build_leaves_no_release_and_says_why(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen: list[str] = []
    with pytest.raises(DeployFailed) as err:
        build(
            example_repo,
            state,
            build_cmds=["echo step one", "echo 'cannot compile widget' >&2; exit 1", "echo never"],
            on_output=seen.append,
        )
    msg = str(err.value)
    assert msg.startswith("build failed: `echo 'cannot compile widget' >&2; exit 1` exited 1 — last lines:")
    assert "cannot compile widget" in msg
    assert err.value.exit_code == 1
    assert "never" not in seen and "step one" in seen
    assert list((state / "releases").iterdir()) == []


def test_build_timeout_kills_the_command(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with pytest.raises(DeployFailed, match=r"`echo waiting; sleep 60` timed out after 1s — last lines:\n  waiting"):
        build(example_repo, state, build_cmds=["echo waiting; sleep 60"], build_timeout=1.0)
    assert list((state / "releases").iterdir()) == []


def test_content_hash_is_stable_per_commit_and_differs_with_content(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    cmds = ["python3 -m compileall -q ."]
    a = build(example_repo, state, build_cmds=cmds, shared=["instance"])
    (instance_dir(state, "staging", a.id) / "instance" / "data").write_text("shared contents never count")
    b = build(example_repo, state, build_cmds=cmds, shared=["instance"])
    assert a.id != b.id
    assert a.content_hash == b.content_hash

    example_repo.commit("one byte more", {"VERSION": "v1!\n"})
    c = build(example_repo, state, ref="main", build_cmds=cmds, shared=["instance"])
    assert c.content_hash != a.content_hash
    # Same bytes, different exec bit: different content.
    os.chmod(c.path / "VERSION", 0o755)
    assert content_hash(c.path, [BUILD_LOG, RELEASE_META, "instance"]) != c.content_hash


def test_ids_are_unique_and_sortable_within_one_second(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    clock = ManualClock(start=1_700_000_000.0)
    ids = [build(example_repo, state, clock=clock).id for _ in range(3)]
    assert len(set(ids)) == 3
    assert ids[0].startswith("r20231114221320-")
    assert sorted(ids) == ids
    clock.advance(1)
    later = build(example_repo, state, clock=clock).id
    assert later > max(ids)
    with pytest.raises(BadInput, match="already exists"):
        build(example_repo, state, release_id=ids[0])
    with pytest.raises(BadInput, match="invalid release id"):
        build(example_repo, state, release_id="../x")
    assert build(example_repo, state, release_id="custom-1").id == "custom-1"


def test_new_release_id_asks_the_caller_what_is_taken() -> None:
    commit = Commit(sha="0123456789abcdef" * 2 + "01234567", short="0123456789", message="m", author="a",
                    committed_at=0.0)
    taken = {"r20231114221320-0123456", "r20231114221320-0123456-2"}
    asked: list[str] = []

    def is_taken(rid: str) -> bool:
        asked.append(rid)
        return rid in taken

    rid = new_release_id(commit, 1_700_000_000.0, is_taken)
    assert rid == "r20231114221320-0123456-3" and ID_RE.match(rid)
    assert asked == ["r20231114221320-0123456", "r20231114221320-0123456-2", rid]
    assert new_release_id(commit, 1_700_000_001.9, lambda _: False) == "r20231114221321-0123456"


def test_release_dir_is_the_one_path_and_refuses_odd_ids(tmp_path: Path) -> None:
    assert release_dir(tmp_path, "r1") == tmp_path / "releases" / "r1"
    for bad in ("../x", "", ".hidden", "a/b", "x" * 101):
        with pytest.raises(BadInput, match="invalid release id"):
            release_dir(tmp_path, bad)


def test_project_in_a_subdirectory_releases_only_that_directory(tmp_path: Path, make_repo: Any) -> None:
    repo = make_repo(tmp_path / "mono")
    repo.commit("two apps", {"svc/app.py": "print('svc')\n", "other/x.txt": "no", "README": "top"})
    repo.tag("v1")
    rel = build_release(
        project_dir=repo.path / "svc", state_dir=tmp_path / "state", ref="v1",
        build_cmds=[], shared=[], clock=SystemClock(),
    )
    assert sorted(p.name for p in rel.path.iterdir()) == sorted(["app.py", BUILD_LOG, RELEASE_META])
    repo.git("rm", "-rq", "svc")
    repo.commit("svc moved away")
    (repo.path / "svc").mkdir()
    with pytest.raises(NotFound, match="svc/ does not exist at ref 'main'"):
        build_release(
            project_dir=repo.path / "svc", state_dir=tmp_path / "state", ref="main",
            build_cmds=[], shared=[], clock=SystemClock(),
        )


def test_commits_between(example_repo: Any) -> None:
    v1 = example_repo.rev("v1")
    shas = [example_repo.commit(f"change {i}", {"VERSION": f"v1.{i}\n"}) for i in range(3)]
    got = commits_between(example_repo.path, v1, shas[-1])
    assert [c.sha for c in got] == list(reversed(shas))  # newest first
    assert [c.subject for c in got] == ["change 2", "change 1", "change 0"]
    assert commits_between(example_repo.path, shas[-1], v1) == []  # a rollback adds nothing
    assert len(commits_between(example_repo.path, v1, shas[-1], limit=2)) == 2
    with pytest.raises(NotFound):
        commits_between(example_repo.path, "0" * 40, shas[-1])


@pytest.mark.parametrize(
    ("ids", "keep", "n", "expected"),
    [
        (["r5", "r4", "r3", "r2", "r1"], set(), 3, ["r2", "r1"]),
        (["r5", "r4", "r3", "r2", "r1"], {"r1"}, 3, ["r2"]),  # serving an old release after rollback
        (["r5", "r4", "r3", "r2", "r1"], {"r5", "r2", "r1"}, 2, ["r3"]),
        (["r3", "r2", "r1"], set(), 5, []),
        (["r3", "r2", "r1"], {"r2"}, 0, ["r3", "r1"]),
        (["r3", "r3", "r2"], set(), 1, ["r2"]),
    ],
)
def test_prune_decision(ids: list[str], keep: set[str], n: int, expected: list[str]) -> None:
    assert releases_to_prune(ids, keep, n) == expected


@given(
    ids=st.lists(st.sampled_from([f"r{i}" for i in range(12)]), max_size=12),
    keep=st.sets(st.sampled_from([f"r{i}" for i in range(12)])),
    n=st.integers(min_value=0, max_value=8),
)
def test_prune_never_removes_kept_or_newest(ids: list[str], keep: set[str], n: int) -> None:
    doomed = releases_to_prune(ids, keep, n)
    assert not set(doomed) & keep
    assert not set(doomed) & set(list(dict.fromkeys(ids))[:n])
    assert set(doomed) | keep | set(list(dict.fromkeys(ids))[:n]) >= set(ids)


def test_prune_releases_deletes_only_chosen_dirs(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    clock = ManualClock()
    rels = []
    for _ in range(4):
        rels.append(build(example_repo, state, clock=clock, shared=["instance"]))
        clock.advance(1)
    (instance_dir(state, "staging", rels[1].id) / "instance" / "db").write_text("keep me")
    newest_first = [r.id for r in reversed(rels)]
    removed = prune_releases(state, keep_ids={rels[0].id}, keep_newest=2, all_ids_newest_first=newest_first)
    assert removed == [rels[1].id]
    left = sorted(p.name for p in (state / "releases").iterdir())
    assert left == sorted([rels[0].id, rels[2].id, rels[3].id])
    assert (state / "shared" / "staging" / "instance" / "db").read_text() == "keep me"  # shared data is never pruned
    assert not (state / "workdirs" / "staging" / rels[1].id).exists()  # a pruned release's work dirs go too
    assert [r.id for r in list_releases(state)] == [rels[3].id, rels[2].id, rels[0].id]
    with pytest.raises(NotFound):
        load_release(state, rels[1].id)


def test_remove_leftovers_clears_interrupted_builds_and_deletions(example_repo: Any, tmp_path: Path) -> None:
    done = build(example_repo, tmp_path)
    releases = tmp_path / "releases"
    (releases / "r20990101000000-abc1234" / "half").mkdir(parents=True)  # a build cut short by a crash
    (releases / ".deleting-r1-42").mkdir()
    assert remove_leftovers(tmp_path) == [".deleting-r1-42", "r20990101000000-abc1234"]
    assert [p.name for p in releases.iterdir()] == [done.id]


def test_build_runs_in_the_final_directory_and_is_incomplete_until_done(example_repo: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen_during_build: list[object] = []

    def watch(line: str) -> None:
        if line == "mark":
            seen_during_build.append(list_releases(state))
            with pytest.raises(NotFound):
                load_release(state, "r-custom")
            seen_during_build.append("checked")

    # Builds bake absolute paths (virtualenv shebangs...): they must be the release's own.
    rel = build(example_repo, state, release_id="r-custom", build_cmds=["pwd -P > built_in.txt", "echo mark"],
                on_output=watch)
    assert seen_during_build == [[], "checked"]
    assert (rel.path / "built_in.txt").read_text().strip() == str(rel.path.resolve())
    assert load_release(state, "r-custom") == rel
