"""The compiled hot path is used only for exactly the sources it was built from (router/native.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.router import native

PKG = Path(shipyard.__file__).resolve().parent


def _probe(src: Path, cache: Path, **env: str) -> dict[str, object]:
    """In a fresh interpreter on ``src``: the key, what install() decided, where h1 came from."""
    code = ("import json; from shipyard.router import native, h1; "
            "print(json.dumps({'key': native.source_key(), 'native': native.state['native'], 'h1': h1.__file__}))")
    base = {k: v for k, v in os.environ.items() if k != "SHIPYARD_ROUTER_PURE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={**base, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache), **env})
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _fake_build(cache: Path, key: str, from_build: Path) -> None:
    dest = cache / "shipyard" / "router-native" / key
    shutil.copytree(from_build, dest)


def test_a_build_serves_only_the_sources_it_was_built_from(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(PKG, src / "shipyard", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    # No build for these sources: plain Python, from the copy's own files.
    first = _probe(src, cache)
    assert first["key"] == native.source_key()  # content-keyed: the copy has the same key as the original
    assert first["native"] is False and str(first["h1"]).startswith(str(src))
    if not native.state["native"]:
        if os.environ.get("SHIPYARD_ROUTER_PURE"):
            pytest.skip("SHIPYARD_ROUTER_PURE=1: no compiled build loaded to reuse")
        pytest.fail("no compiled router build for these sources: run make router-native")
    _fake_build(cache, str(first["key"]), Path(str(native.state["dir"])))
    built = _probe(src, cache)
    assert built["native"] is True and str(built["h1"]).endswith(native.SUFFIX)
    assert _probe(src, cache, SHIPYARD_ROUTER_PURE="1")["native"] is False
    # Any edit of a router source (or of the primitives it is typed against) changes the key: plain Python.
    with open(src / "shipyard" / "router" / "headers.py", "a") as f:
        f.write("\n# edited\n")
    edited = _probe(src, cache)
    assert edited["key"] != first["key"]
    assert edited["native"] is False and str(edited["h1"]).startswith(str(src))


def test_an_unfinished_build_is_not_used(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(PKG, src / "shipyard", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    dest = cache / "shipyard" / "router-native" / native.source_key()
    dest.mkdir(parents=True)  # a build that died before writing its completion mark
    assert _probe(src, cache)["native"] is False


def test_prune_keeps_recently_used_builds_the_current_one_and_the_newest_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.router import buildnative

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = native.cache_root()
    now = 10_000_000.0
    day = 24 * 3600.0

    def build(name: str, age: float, finished: bool = True) -> Path:
        d = root / name
        d.mkdir(parents=True)
        if finished:
            (d / native.DONE).write_text(name + "\n")
            os.utime(d / native.DONE, (now - age, now - age))
        os.utime(d, (now - age, now - age))
        return d

    current = build("current", age=30 * day)  # the oldest, but the one these sources need
    recent = [build(f"recent{i}", age=3600.0 * i) for i in range(1, 4)]  # loaded today: all kept
    old = [build(f"old{i}", age=day * (1 + i)) for i in range(1, 7)]  # the newest four of these are kept
    fresh_partial = build("key.in-progress", age=60.0, finished=False)
    stale_partial = build("key.dead", age=7200.0, finished=False)
    removed = buildnative.prune(keep={"current"}, newest=4, now=now)
    assert sorted(p.name for p in removed) == ["key.dead", "old5", "old6"]
    assert current.exists() and fresh_partial.exists() and not stale_partial.exists()
    assert all(d.exists() for d in recent)
    assert [d.exists() for d in old] == [True, True, True, True, False, False]
