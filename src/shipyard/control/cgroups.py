"""Per-instance resource limits with Linux cgroups: v2 where it is mounted with the memory controller,
else v1 (memory, cpu and cpuacct hierarchies), else none — then the supervisor watches memory with psutil
and kills an instance past its limit itself (CPU cannot be held without a cgroup: a warning says so).

Groups live under the control plane's own group, one directory per project (``shipyard-<hash of its state
dir>``) and one per instance inside it, so two projects on one machine never share or remove each other's.
A process joins its group before it execs (``process.spawn(join=…)`` writes ``0`` to ``cgroup.procs`` in
the child), so nothing it allocates is ever outside the limit. An OOM kill is read from the kernel's
counter (v2 ``memory.events`` ``oom_kill``, v1 ``memory.oom_control`` ``oom_kill``, or ``memory.failcnt``
with a SIGKILL exit on kernels older than 4.13).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shipyard.engine.rollout.launch import Limits
from shipyard.primitives import process

__all__ = ["Cgroups", "InstanceCgroup", "Limits", "human_bytes"]

log = logging.getLogger("shipyard.cgroups")

Mode = Literal["v2", "v1", "none"]
CPU_PERIOD_US = 100_000
V1_CONTROLLERS = ("memory", "cpu", "cpuacct")


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} B"


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _counter(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


@dataclass
class InstanceCgroup:
    """One instance's groups: ``{"unified": dir}`` on v2, one dir per v1 controller."""

    mode: Mode
    dirs: dict[str, Path] = field(default_factory=dict)

    @property
    def enforces_memory(self) -> bool:
        return "unified" in self.dirs or "memory" in self.dirs

    @property
    def enforces_cpu(self) -> bool:
        return "unified" in self.dirs or "cpu" in self.dirs

    @property
    def counts_oom_kills(self) -> bool:
        d = self._mem_dir()
        return d is not None and (self.mode == "v2" or "oom_kill " in (_read(d / "memory.oom_control") or ""))

    def join_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def _mem_dir(self) -> Path | None:
        return self.dirs.get("unified") or self.dirs.get("memory")

    def oom_kills(self) -> int:
        """The kernel's count of OOM kills in this group (``memory.failcnt`` where the kernel has none)."""
        d = self._mem_dir()
        if d is None:
            return 0
        if self.mode == "v2":
            return _counter(_read(d / "memory.events"), "oom_kill") or 0
        kills = _counter(_read(d / "memory.oom_control"), "oom_kill")
        if kills is not None:
            return kills
        return int((_read(d / "memory.failcnt") or "0").strip() or 0)

    def memory_bytes(self) -> int | None:
        d = self._mem_dir()
        if d is None:
            return None
        text = _read(d / ("memory.current" if self.mode == "v2" else "memory.usage_in_bytes"))
        return int(text) if text and text.strip().isdigit() else None

    def cpu_seconds(self) -> float | None:
        """CPU time used by the group's processes since it was made."""
        if self.mode == "v2":
            usec = _counter(_read(self.dirs["unified"] / "cpu.stat"), "usage_usec")
            return usec / 1e6 if usec is not None else None
        d = self.dirs.get("cpuacct")
        text = _read(d / "cpuacct.usage") if d else None
        return int(text) / 1e9 if text and text.strip().isdigit() else None


class Cgroups:
    """The cgroup driver of one project: finds what the machine mounts, makes and removes instance groups."""

    def __init__(self, state_dir: Path, *, sysfs: Path = Path("/sys/fs/cgroup"),
                 proc_self: Path = Path("/proc/self")) -> None:
        self.tag = "shipyard-" + hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:12]
        self.sysfs = sysfs
        self.proc_self = proc_self
        self._bases: dict[str, Path] | None = None
        self.mode: Mode = "none"
        self.warning: str | None = None
        self._groups: dict[str, InstanceCgroup] = {}

    # -- detection -------------------------------------------------------------------------------
    def bases(self) -> dict[str, Path]:
        """Where instance groups go, per controller (``unified`` on v2); found once."""
        if self._bases is None:
            self._bases = self._detect()
        return self._bases

    def _detect(self) -> dict[str, Path]:
        mounts = self._mounts()
        own = self._own_groups()
        problems: list[str] = []
        for mount, fstype, _ in mounts:
            if fstype != "cgroup2":
                continue
            controllers = (_read(mount / "cgroup.controllers") or "").split()
            if "memory" not in controllers:
                problems.append(f"cgroup v2 at {mount} has no memory controller")
                continue
            base = mount / own.get("", "/").lstrip("/") / self.tag
            try:
                self._make_v2_base(base, controllers)
            except OSError as exc:
                problems.append(f"cannot make {base} ({exc.strerror})")
                continue
            self.mode = "v2"
            return {"unified": base}
        found: dict[str, Path] = {}
        for mount, fstype, opts in mounts:
            if fstype != "cgroup":
                continue
            for ctl in V1_CONTROLLERS:
                if ctl in opts and ctl not in found:
                    base = mount / self._own_path(own, ctl).lstrip("/") / self.tag
                    try:
                        base.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        problems.append(f"cannot make {base} ({exc.strerror})")
                        continue
                    found[ctl] = base
        if "memory" in found or "cpu" in found:
            self.mode = "v1"
            missing = [c for c in ("memory", "cpu") if c not in found]
            if missing:
                self.warning = f"cgroup v1 has no usable {' or '.join(missing)} controller: that limit is not enforced"
            return found
        self.mode = "none"
        detail = "; ".join(problems) or "no cgroup controllers are mounted"
        self.warning = (f"resource limits cannot be enforced with cgroups ({detail}): memory is watched "
                        "every sample and an instance past its limit is killed; CPU limits are not enforced")
        return {}

    def _make_v2_base(self, base: Path, controllers: list[str]) -> None:
        parent = base.parent
        wanted = [c for c in ("memory", "cpu") if c in controllers]
        enabled = (_read(parent / "cgroup.subtree_control") or "").split()
        if any(c not in enabled for c in wanted):
            # Fails (EBUSY) when our own group holds processes and is not the root: then v2 is unusable here.
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        base.mkdir(exist_ok=True)
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def _mounts(self) -> list[tuple[Path, str, set[str]]]:
        out = []
        for line in (_read(self.proc_self / "mounts") or "").splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2") and parts[1].startswith(str(self.sysfs)):
                out.append((Path(parts[1]), parts[2], set(parts[3].split(","))))
        return out

    def _own_groups(self) -> dict[str, str]:
        """``/proc/self/cgroup``: controller list (``""`` for v2) → our group's path in it."""
        out = {}
        for line in (_read(self.proc_self / "cgroup") or "").splitlines():
            _, ctls, path = line.split(":", 2)
            out[ctls] = path
        return out

    @staticmethod
    def _own_path(own: dict[str, str], ctl: str) -> str:
        for ctls, path in own.items():
            if ctl in ctls.split(","):
                return path
        return "/"

    # -- instance groups -------------------------------------------------------------------------
    def ensure(self, iid: str, limits: Limits) -> InstanceCgroup | None:
        """The instance's group with ``limits`` written (made if need be); None when there is none."""
        bases = self.bases()
        if not bases or not limits:
            return None
        group = InstanceCgroup(self.mode)
        for ctl, base in bases.items():
            if ctl == "memory" and limits.memory is None or ctl == "cpu" and limits.cpu is None:
                continue
            d = base / iid
            d.mkdir(exist_ok=True)
            group.dirs[ctl] = d
        if self.mode == "v2":
            d = group.dirs["unified"]
            if limits.memory is not None:
                _write(d / "memory.max", str(limits.memory))
                with contextlib.suppress(OSError):
                    _write(d / "memory.swap.max", "0")  # past the limit is an OOM kill, not swapping
            if limits.cpu is not None and (d / "cpu.max").exists():
                _write(d / "cpu.max", f"{max(1000, int(limits.cpu * CPU_PERIOD_US))} {CPU_PERIOD_US}")
        else:
            if "memory" in group.dirs and limits.memory is not None:
                self._v1_memory(group.dirs["memory"], limits.memory)
            if "cpu" in group.dirs and limits.cpu is not None:
                d = group.dirs["cpu"]
                _write(d / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(d / "cpu.cfs_quota_us", str(max(1000, int(limits.cpu * CPU_PERIOD_US))))
        self._groups[iid] = group
        return group

    @staticmethod
    def _v1_memory(d: Path, limit: int) -> None:
        memsw = d / "memory.memsw.limit_in_bytes"
        has_swap_limit = memsw.exists()
        if has_swap_limit:
            _write(memsw, "-1")  # memsw may never be below the limit: lift it while the limit changes
        _write(d / "memory.limit_in_bytes", str(limit))
        if has_swap_limit:
            _write(memsw, str(limit))  # past the limit is an OOM kill, not swapping

    def group(self, iid: str) -> InstanceCgroup | None:
        return self._groups.get(iid)

    def remove(self, iid: str) -> None:
        """Remove an instance's (empty) groups; one still holding a process is left and logged."""
        group = self._groups.pop(iid, None)
        if group is None:
            return
        for d in group.dirs.values():
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                log.warning("cgroup %s still holds processes; left in place", d)



class InstanceLimits:
    """One instance's limits as the supervisor holds them: its cgroup (or psutil watching when there is
    none) and the OOM count its current process started with."""

    def __init__(self, cgroups: Cgroups | None, iid: str, limits: Limits) -> None:
        self.cgroups = cgroups
        self.iid = iid
        self.limits = limits
        self.group: InstanceCgroup | None = None
        self._oom_base = 0
        self.watch_killed = False  # killed by ``over_memory`` watching, not by the kernel

    @property
    def enforced(self) -> str | None:
        if not self.limits:
            return None
        if self.group is not None and (self.group.enforces_memory or self.limits.memory is None):
            return f"cgroup {self.group.mode}"
        return "watched" if self.limits.memory is not None else "not enforced"

    def unenforced(self) -> str | None:
        """Why some of the limits are not held by a cgroup (None when they all are)."""
        if not self.limits:
            return None
        g = self.group
        if g is not None and (g.enforces_memory or self.limits.memory is None) and (
                g.enforces_cpu or self.limits.cpu is None):
            return None
        if self.cgroups is None:
            return "resource limits are not enforced by a cgroup here: memory is watched, CPU is not limited"
        return self.cgroups.warning or "resource limits are not enforced by a cgroup"

    def prepare(self) -> list[Path]:
        """Before a process starts: its group made with the limits; the ``cgroup.procs`` it joins."""
        self.watch_killed = False
        if not self.limits or self.cgroups is None:
            return []
        if self.group is None:
            try:
                self.group = self.cgroups.ensure(self.iid, self.limits)
            except OSError as exc:
                self.cgroups.warning = f"cannot set the limits of {self.iid} ({exc.strerror}): memory is watched instead"
                log.warning("%s", self.cgroups.warning)
        if self.group is None:
            return []
        self._oom_base = self.group.oom_kills()
        return self.group.join_files()

    def oom_killed(self, exit_code: int | None) -> bool:
        """Did the process that exited with ``exit_code`` die of its memory limit?"""
        if self.watch_killed:
            return True
        if self.group is None or not self.group.enforces_memory:
            return False
        if self.group.oom_kills() <= self._oom_base:
            return False
        # Without the kernel's oom_kill counter failcnt counts every time the limit was hit (often just
        # reclaim): only a SIGKILL exit makes that an OOM kill.
        return self.group.counts_oom_kills or exit_code in (-9, 137)

    def watch(self, pid: int, create_time: float, rss: int) -> None:
        """Without a memory cgroup: past its limit, the instance's group is killed as the kernel would."""
        if self.limits.memory is None or (self.group is not None and self.group.enforces_memory):
            return
        if rss > self.limits.memory and process.is_alive(pid, create_time):
            self.watch_killed = True
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # our instances lead their own process group

    def describe(self) -> str:
        mem = f"memory limit {human_bytes(self.limits.memory)}" if self.limits.memory is not None else "memory"
        how = "killed by the shipyard memory watch" if self.watch_killed else "killed by the OOM killer"
        return f"{how} ({mem})"

    def remove(self) -> None:
        if self.cgroups is not None and self.group is not None:
            self.cgroups.remove(self.iid)
        self.group = None
