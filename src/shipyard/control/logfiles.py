"""Instance log files: size rotation that loses no line, ``tail`` and ``follow`` across rotations.

Instances keep their log open ``O_APPEND`` (no pipe: they outlive the control plane), so the live file
keeps its inode. Rotation copies its first N bytes (size rounded down to a block) to ``.1`` (older copies
shift up, beyond ``keep`` deleted), then cuts exactly those bytes from its front with
``fallocate(FALLOC_FL_COLLAPSE_RANGE)``, under the inode lock ``O_APPEND`` writes take too: what is
written during the copy stays, nothing is lost. A line may be split at the block boundary; ``tail`` and
``follow`` read copies and live file as one stream. Where the filesystem cannot collapse (tmpfs, btrfs,
NFS) or the file is under a block, rotation falls back to copytruncate (lossy between copy and truncate).
Rotation and readers ``flock`` the live file (exclusive / shared); instances do not. Copies get the live
file's mode; ``RotationPace`` decides when to rotate (docs/security.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import itertools
import logging
import os
import select
import stat
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shipyard.primitives.clock import Clock, SystemClock

log = logging.getLogger("shipyard.logfiles")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5
_FALLOC_FL_COLLAPSE_RANGE = 0x08
_CHUNK = 1 << 20
LOOK = 0.02
# Allowance for the rotation thread waiting for a CPU on a busy machine (2 cores, a flood and a build).
JITTER = 0.05


def rotated(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


# -- rotation -------------------------------------------------------------------------------------------

def rotate(path: Path, keep: int = DEFAULT_KEEP) -> int:
    """Move the bulk of ``path`` to ``path.1`` (older copies shift up, beyond ``keep`` deleted); returns
    the number of bytes moved. Lossless where the filesystem can collapse a range (see the module)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        with _locked(fd, fcntl.LOCK_EX):
            size = os.fstat(fd).st_size
            if keep < 1:
                os.ftruncate(fd, 0)
                return size
            with contextlib.suppress(FileNotFoundError):
                rotated(path, keep).unlink()
            for n in range(keep - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    rotated(path, n).replace(rotated(path, n + 1))
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            out = os.open(rotated(path, 1), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
            try:
                os.fchmod(out, mode)  # like the live file, whatever the umask
                block = max(os.fstatvfs(fd).f_frsize, 512)
                # Collapsing may not reach the end of the file: keep at least its last byte.
                prefix = (size - 1) // block * block if size > 0 else 0
                if prefix and _copy(fd, out, 0, prefix) and _collapse(fd, prefix):
                    return prefix
                # copytruncate: copy what is there now (again from the start), then cut.
                os.ftruncate(out, 0)
                end = os.fstat(fd).st_size
                _copy(fd, out, 0, end)
                os.ftruncate(fd, 0)
                return end
            finally:
                os.close(out)
    finally:
        os.close(fd)


def rotate_if_needed(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> bool:
    """Rotate when the file has grown past ``max_bytes``; True when it did."""
    if _size(path) <= max_bytes:  # a missing file is 0 bytes
        return False
    rotate(path, keep)
    return True


def _copy(src: int, dst: int, offset: int, count: int) -> bool:
    """Copy ``count`` bytes of ``src`` from ``offset`` to the end of ``dst``, in the kernel when it can."""
    done = 0
    while done < count:
        try:
            n = os.copy_file_range(src, dst, min(count - done, 64 * _CHUNK), offset + done)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            n = os.write(dst, os.pread(src, min(count - done, _CHUNK), offset + done))
        if n == 0:
            return False  # the file shrank under us
        done += n
    return True


try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    _LIBC: ctypes.CDLL | None = _libc
except (OSError, AttributeError):
    _LIBC = None


def _collapse(fd: int, length: int) -> bool:
    """Remove the first ``length`` bytes of the file in place; False when the filesystem cannot."""
    if _LIBC is None:
        return False
    if _LIBC.fallocate(fd, _FALLOC_FL_COLLAPSE_RANGE, 0, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.EPERM, errno.ENODEV):
        return False
    raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def _locked(fd: int, how: int) -> Iterator[None]:
    fcntl.flock(fd, how)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass
class RotationPace:
    """When to look at a growing log file again, and whether to rotate it now (pure; one per file).

    The growth rate is measured between looks; a file that would pass ``max_bytes`` within ``lead`` seconds
    (the time from a look to the end of a rotation, as measured, plus the pause between looks) is rotated
    now, and the next look comes sooner the faster the file grows."""

    max_bytes: int = DEFAULT_MAX_BYTES
    min_interval: float = 0.01
    max_interval: float = 1.0
    latency: float = 0.05  # from a look to the end of its rotation (smoothed; ``rotated`` measures it)
    _size: int = 0
    _at: float | None = None
    rate: float = 0.0  # bytes per second, smoothed

    def check(self, size: int, now: float) -> tuple[bool, float]:
        """(rotate now?, seconds until the next check) for a file of ``size`` bytes at ``now``."""
        if self._at is not None and now > self._at and size >= self._size:
            measured = (size - self._size) / (now - self._at)
            self.rate = measured if measured > self.rate else 0.5 * self.rate + 0.5 * measured
        self._size, self._at = size, now
        lead = self.latency + LOOK + JITTER
        # Never before half the limit: rotated copies stay a useful size whatever the rate.
        rotate = size > self.max_bytes or (size + self.rate * lead > self.max_bytes and size > self.max_bytes // 2)
        room = max(self.max_bytes - (0 if rotate else size), 0)
        if self.rate <= 0:
            return rotate, self.max_interval
        return rotate, min(self.max_interval, max(self.min_interval, 0.5 * room / self.rate))

    def rotated(self, took: float, size_after: int, now: float) -> None:
        """A rotation that ``took`` seconds since its look left ``size_after`` bytes at ``now``."""
        self.latency = max(took, 0.5 * self.latency + 0.5 * took)
        self._size, self._at = size_after, now


class LogRotator:
    """Keeps a set of live log files under ``max_bytes``, in a thread of its own (so a busy event loop
    cannot delay a rotation): woken by inotify when one is written to (polled without inotify), each
    looked at as often as its growth needs (``RotationPace``). ``paths`` is called for the current set."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP) -> None:
        self.max_bytes, self.keep = max_bytes, keep
        self.rotations = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, paths: Callable[[], Iterable[Path]]) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(paths,), name="log-rotation", daemon=True)
            self._thread.start()

    def stop(self, wait: float = 0.0) -> None:
        """Stop looking (within a second); ``wait`` up to that many seconds for the thread to end."""
        self._stop.set()
        if self._thread is not None and wait:
            self._thread.join(timeout=wait)

    def _run(self, paths: Callable[[], Iterable[Path]]) -> None:
        paces: dict[Path, RotationPace] = {}
        current: set[Path] = set()
        notify = _Inotify(self._stop)
        try:
            while not self._stop.is_set():
                with contextlib.suppress(RuntimeError):  # the owner's set changed while we read it
                    current = set(paths())
                delay = RotationPace.max_interval
                for path in current:
                    notify.watch(path)
                    pace = paces.setdefault(path, RotationPace(self.max_bytes))
                    looked = time.monotonic()
                    due, wait = pace.check(_size(path), looked)
                    if due and self._rotate(path):
                        now = time.monotonic()
                        pace.rotated(now - looked, _size(path), now)
                    delay = min(delay, wait)
                for gone in paces.keys() - current:
                    del paces[gone]
                # At most every LOOK (writes in between are one wake-up; a sudden flood of 40 MB/s grows a file
                # by < 1 MB meanwhile), sooner near a limit; then until something is written.
                if self._stop.wait(min(delay, LOOK)):
                    break
                notify.wait(RotationPace.max_interval)
        finally:
            if notify.fd >= 0:
                os.close(notify.fd)

    def _rotate(self, path: Path) -> bool:
        try:
            moved = rotate(path, self.keep)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("cannot rotate %s: %s", path, exc)
            return False
        self.rotations += 1
        log.debug("rotated %s (%d bytes)", path, moved)
        return True


class _Inotify:
    """IN_MODIFY watches on files; without inotify, ``wait`` just waits for ``stop``."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self._watched = stop, set[Path]()
        self.fd: int = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC) if _LIBC is not None else -1

    def watch(self, path: Path) -> None:
        if (self.fd >= 0 and path not in self._watched and path.exists() and _LIBC is not None
                and _LIBC.inotify_add_watch(self.fd, os.fsencode(path), 0x2) >= 0):  # IN_MODIFY
            self._watched.add(path)

    def wait(self, timeout: float) -> None:
        if self.fd < 0:
            self.stop.wait(timeout)
            return
        select.select([self.fd], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 64 * 1024):  # events only say "written to": drained, not parsed
                pass
        self._watched = {p for p in self._watched if p.exists()}


# -- reading --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Hold the live file's shared lock (no rotation meanwhile) when it exists."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield
        return
    try:
        with _locked(fd, fcntl.LOCK_SH):
            yield
    finally:
        os.close(fd)


def tail(path: Path, n: int = 100, *, end: int | None = None) -> list[str]:
    """The last ``n`` lines of ``path`` and, when it holds fewer, of its rotated copies before it, as one
    stream; reads only the end of big files; ``end``: the live file up to there (where a Follower starts)."""
    if n <= 0:
        return []
    with _reading(path):
        data = b""
        copies = itertools.takewhile(Path.exists, (rotated(path, k) for k in itertools.count(1)))
        for file in itertools.chain([path], copies):
            try:
                with open(file, "rb") as f:
                    pos = f.seek(0, os.SEEK_END)
                    if file == path and end is not None:
                        pos = min(pos, end)
                    while pos > 0 and data.count(b"\n") <= n:
                        step = min(64 * 1024, pos)
                        pos -= step
                        f.seek(pos)
                        data = f.read(step) + data
            except FileNotFoundError:
                continue
            if data.count(b"\n") > n:
                break
    return data.decode("utf-8", "replace").splitlines()[-n:]


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns  # a rename keeps both; a new copy has a new inode or mtime


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _new_copies(path: Path, known: tuple[int, int] | None) -> list[Path]:
    """Rotated copies made since ``known`` was ``.1``, oldest first (all of them when it is gone)."""
    found: list[Path] = []
    n = 1
    while (ident := _identity(rotated(path, n))) is not None:
        if ident == known:
            break
        found.append(rotated(path, n))
        n += 1
    return list(reversed(found))


class Follower:
    """Reads what is appended to a log file, across rotations: what moved into new rotated copies since the
    last look is read from them first, from where this reader was, then the live file. At most ``chunk``
    bytes a look, so a flood is read in steps. For ``shipyard logs -f`` (sync) and ``follow`` (async)."""

    def __init__(self, path: Path, *, chunk: int = _CHUNK) -> None:
        self.path, self.chunk = path, chunk
        with _reading(path):
            self._pos = _size(path)
            self._known = _identity(rotated(path, 1))
        self._pending = b""

    @property
    def position(self) -> int:  # where in the live file this reader goes on from
        return self._pos

    def poll(self) -> list[str]:
        """The complete lines written since the last call ([] when none)."""
        chunks: list[bytes] = []
        with _reading(self.path):
            now_known = _identity(rotated(self.path, 1))
            if now_known != self._known:
                for copy in _new_copies(self.path, self._known):
                    size = _size(copy)
                    if self._pos < size:
                        chunks.append(_read(copy, self._pos, size))
                    self._pos = max(0, self._pos - size)
                self._known = now_known
            size = _size(self.path)
            if size < self._pos:  # cut without a copy (keep = 0): start again
                self._pos = 0
            if size > self._pos:
                chunks.append(_read(self.path, self._pos, min(size, self._pos + self.chunk)))
                self._pos += len(chunks[-1])
        if not chunks:
            return []
        *complete, self._pending = (self._pending + b"".join(chunks)).split(b"\n")
        return [raw.decode("utf-8", "replace") for raw in complete]


async def follow(path: Path, *, lines: int = 10, clock: Clock | None = None,
                 poll_interval: float = 0.25) -> AsyncGenerator[str, None]:
    """Yield the last ``lines`` lines, then every new line as it is written (like ``tail -F``), across
    rotations (``Follower``); works before the file exists. Polls through ``clock``; gives the event loop
    a turn after every batch, so a flood never starves it. Runs until the consumer stops iterating."""
    clock = clock or SystemClock()
    with _reading(path):
        reader = Follower(path)
        last = tail(path, lines, end=reader.position) if lines > 0 else []  # the rest is the reader's
    for line in last:
        yield line
    while True:
        batch = reader.poll()
        for line in batch:
            yield line
        await (asyncio.sleep(0) if batch else clock.sleep(poll_interval))


def _read(path: Path, start: int, end: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(end - start)
    except FileNotFoundError:
        return b""
