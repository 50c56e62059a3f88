"""Build cache: the first and second release build of examples/fastapi (unchanged requirements), a
rebuild after requirements.txt changes, and a second build without the cache for reference.

Real pip from PyPI into a fresh state dir (so the first build also fills pip's cache). Bar: the
second build at least 3× faster than the first. Also: disk of two releases (hard links), and the time
to make a work dir of such a release (what the first start of a release with shared dirs costs). Prints one JSON document; copy the figures into
docs/benchmarks.md.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from shipyard.engine.releases import BUILD_LOG, BuiltRelease, CacheRule, build_release
from shipyard.engine.releases.workdir import _mirror
from shipyard.primitives.clock import SystemClock

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=GIT_ENV)


def commit(repo: Path, message: str, files: dict[str, str] | None = None) -> None:
    for name, text in (files or {}).items():
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def du_bytes(path: Path) -> int:
    """Disk used under path, hard-linked files counted once (as `du -s` does)."""
    out = subprocess.run(["du", "-sk", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0]) * 1024


def serves(release: BuiltRelease) -> bool:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(release.path / ".venv" / "bin" / "uvicorn"), "main:app", "--port", str(port)],
                            cwd=release.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                return conn.getresponse().status == 200
            except OSError:
                time.sleep(0.1)  # nothing to await: uvicorn announces readiness only in its log
        return False
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> int:
    spec = tomllib.loads((EXAMPLE / "shipyard.toml").read_text())["app"]
    cmds = list(spec["build"])
    rules = [CacheRule(path=c["path"], key=tuple(c["key"])) for c in spec["build_cache"]]
    with tempfile.TemporaryDirectory(prefix="bench-build-cache-") as tmp:
        repo, state = Path(tmp) / "repo", Path(tmp) / "state"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        for name in ("main.py", "requirements.txt", "shipyard.toml"):
            shutil.copy(EXAMPLE / name, repo / name)
        commit(repo, "v1")

        def build(cache: list[CacheRule]) -> tuple[BuiltRelease, float, str]:
            t0 = time.monotonic()
            rel = build_release(project_dir=repo, state_dir=state, ref="HEAD", build_cmds=cmds, shared=[],
                                clock=SystemClock(), cache=cache)
            took = time.monotonic() - t0
            log = (rel.path / BUILD_LOG).read_text()
            outcome = "hit" if "[build cache] hit" in log else "miss"
            return rel, took, outcome

        first, t_first, o_first = build(rules)
        commit(repo, "code change", {"VERSION": "v2\n"})
        second, t_second, o_second = build(rules)
        both = du_bytes(state / "releases")
        commit(repo, "no cache", {"VERSION": "v3\n"})
        _nocache, t_nocache, _ = build([])
        commit(repo, "new requirement", {"requirements.txt": (repo / "requirements.txt").read_text() + "itsdangerous\n"})
        third, t_third, o_third = build(rules)
        ok = serves(second)
        venv_mb = round(du_bytes(first.path / ".venv") / 1e6, 1)
        # What a release with shared dirs pays on its first start in an environment: its work dir.
        t0 = time.monotonic()
        _mirror(second.path, Path(tmp) / "workdir", set())
        t_workdir = time.monotonic() - t0
        files = sum(len(f) for _, _, f in os.walk(second.path))
        shutil.rmtree(first.path)
        ok_after_prune = serves(second)
        result = {
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}, "
                       f"Python {platform.python_version()}",
            "first_build_s": round(t_first, 2), "first": o_first,
            "second_build_s": round(t_second, 2), "second": o_second,
            "ratio": round(t_first / t_second, 1),
            "second_without_cache_s": round(t_nocache, 2),
            "changed_requirements_build_s": round(t_third, 2), "changed_requirements": o_third,
            "venv_mb": venv_mb,
            "release_files": files, "workdir_of_release_s": round(t_workdir, 3),
            "disk_two_releases_mb": round(both / 1e6, 1),
            "second_serves": ok, "second_serves_after_first_pruned": ok_after_prune,
            "third_has_new_package": (third.path / ".venv").exists()
            and any((third.path / ".venv" / "lib").glob("python*/site-packages/itsdangerous")),
        }
    print(json.dumps(result, indent=2))
    good = (result["ratio"] >= 3 and o_first == "miss" and o_second == "hit" and o_third == "miss"
            and ok and ok_after_prune and result["third_has_new_package"])
    print("PASS" if good else "FAIL: bar is a hit ≥ 3× faster, a miss after a change, and a working venv")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
