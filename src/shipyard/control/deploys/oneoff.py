"""One-off commands (``shipyard run``): a command in a release's directory with the environment's
configuration and secrets — exactly what its instances get — its output streamed, its exit code returned,
and a record of who ran what (never the environment's values).

Without a terminal the control plane runs it and streams the output. With ``-i`` the CLI runs it itself,
under the user's terminal (a Django shell needs one): the control plane hands it the directory and the
environment over the loopback API (the caller holds the admin token) and records the exit code it reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as _secrets
import shlex
from collections.abc import AsyncIterator, Sequence
from typing import Any

from shipyard.control.deploys.commands import release_environment
from shipyard.control.events import EventLog
from shipyard.control.paths import Paths
from shipyard.control.target import Targets
from shipyard.engine.rollout.launch import Launch
from shipyard.errors import BadInput
from shipyard.primitives.spec import Spec
from shipyard.primitives.store import Store

MAX_LINE = 8192


class OneOffs:
    def __init__(self, *, paths: Paths, store: Store, targets: Targets, events: EventLog) -> None:
        self.paths, self.store, self.targets, self.events = paths, store, targets, events
        self._pending: dict[str, tuple[str, str, str]] = {}  # run id → (env, release, command) for -i

    async def prepare(self, spec: Spec, env: str, release: str | None, argv: Sequence[str]) -> dict[str, Any]:
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise BadInput("shipyard run needs a command: shipyard run --env ENV -- COMMAND [ARGS…]")
        spec.env(env)
        rel = release or self._serving(env)
        if not self.paths.release_dir(rel).is_dir():
            raise BadInput(f"release {rel} is not on disk (see 'shipyard releases')")
        routing = self.targets.get(env).routing
        launch = routing.launch.get(rel) or Launch.from_spec(spec, env)
        cwd = await self.targets.instances.workdir(env, rel)
        environ = release_environment(self.targets.instances, env, launch, rel, cwd)
        return {"env": env, "release": rel, "cwd": str(cwd), "environ": environ,
                "argv": list(argv)}

    def _serving(self, env: str) -> str:
        rec = self.store.get_environment(env)
        if rec is None or rec.current_release is None:
            raise BadInput(f"nothing serves {env} yet: give --release ID")
        return str(rec.current_release)

    async def stream(self, job: dict[str, Any], performer: str) -> AsyncIterator[dict[str, Any]]:
        """Run it here; yield ``output`` lines, then ``exit`` with its code."""
        command = shlex.join(job["argv"])
        yield {"event": "started", "env": job["env"], "release": job["release"], "command": command}
        try:
            proc = await asyncio.create_subprocess_exec(
                *job["argv"], cwd=job["cwd"], env=job["environ"], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                limit=MAX_LINE * 2)
        except OSError as exc:
            self._record(job["env"], job["release"], command, performer, 127)
            yield {"event": "exit", "code": 127, "error": f"cannot run {job['argv'][0]!r}: {exc.strerror}"}
            return
        assert proc.stdout is not None
        try:
            while True:
                try:
                    raw = await proc.stdout.readline()
                except ValueError:
                    raw = await proc.stdout.read(MAX_LINE)
                if not raw:
                    break
                yield {"event": "output", "line": raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")}
            code = await proc.wait()
        finally:
            if proc.returncode is None:  # the client went away: the command goes with it
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                await proc.wait()
        self._record(job["env"], job["release"], command, performer, code)
        yield {"event": "exit", "code": code}

    def hand_over(self, job: dict[str, Any]) -> dict[str, Any]:
        """For ``-i``: the CLI runs it; it reports the exit code with the id given here."""
        run_id = _secrets.token_hex(8)
        self._pending[run_id] = (job["env"], job["release"], shlex.join(job["argv"]))
        return {**job, "run": run_id}

    def finished(self, run_id: str, code: int, performer: str) -> None:
        found = self._pending.pop(run_id, None)
        if found is None:
            raise BadInput(f"no interactive run {run_id!r} is waiting for its exit code")
        self._record(*found, performer, code)

    def _record(self, env: str, release: str, command: str, performer: str, code: int) -> None:
        self.events.add(env, "run", f"run `{command}` in {release} by {performer}: exit {code}",
                        data={"command": command, "release": release, "performer": performer, "exit_code": code})
        self.store.add_audit(self.events.clock.time(), performer, "run", env, release, {"command": command, "exit_code": code})
