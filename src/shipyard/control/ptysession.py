"""``shipyard run -i`` for a remote CLI: the command runs here under a pseudo-terminal, and the API
connection (upgraded, primitives/ttyframes.py) carries what is typed there and what it prints back.

The program gets a real terminal as its controlling one (Ctrl-C typed remotely is a SIGINT here, a Django
shell or ``psql`` work). The environment — secrets included — never leaves this machine; only the terminal's
bytes do. A client that goes away hangs the program up (SIGHUP to its group, SIGKILL 5 s later).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import sys
import termios
from collections.abc import Awaitable, Callable
from typing import Any

from shipyard.primitives.ttyframes import DATA, WINSIZE, Decoder, FrameError, data_frames, exit_frame

HANGUP_GRACE_S = 5.0
READ_CHUNK = 1 << 16
MAX_QUEUED = 64  # chunks read ahead of a slow client
AFTER_EXIT_S = 0.2  # output still read after the program exited, when the terminal stays open


# The pty becomes the program's controlling terminal in a small exec'd step rather than a preexec_fn, which
# is not safe in a process with threads (the control plane has some): run in its new session (setsid), it
# takes stdin (the pty) as its terminal, then becomes the command; a command not found is exit 127.
_EXEC = ("import fcntl, os, sys, termios\n"
         "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
         "try:\n    os.execvp(sys.argv[1], sys.argv[1:])\n"
         "except OSError as exc:\n"
         "    print(f'cannot run {sys.argv[1]!r}: {exc.strerror}', file=sys.stderr)\n    sys.exit(127)\n")


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtySession:
    """One interactive run; ``serve`` is handed the upgraded connection, ``on_exit(code)`` records it."""

    def __init__(self, job: dict[str, Any], on_exit: Callable[[int], None]) -> None:
        self.job = job
        self.on_exit = on_exit

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        master, slave = os.openpty()
        set_winsize(master, 24, 80)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-c", _EXEC, *self.job["argv"], cwd=self.job["cwd"], env=self.job["environ"],
                stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        except OSError as exc:
            os.close(master)
            os.close(slave)
            writer.write(data_frames(f"cannot run {self.job['argv'][0]!r}: {exc.strerror}\r\n".encode()))
            writer.write(exit_frame(127))
            await writer.drain()
            self.on_exit(127)
            return
        os.close(slave)
        os.set_blocking(master, False)
        output: asyncio.Queue[bytes | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        paused = [False]

        def readable() -> None:
            try:
                chunk = os.read(master, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:  # EIO: every holder of the terminal's other side has closed it
                chunk = b""
            if not chunk:
                loop.remove_reader(master)
                output.put_nowait(None)
                return
            output.put_nowait(chunk)
            if output.qsize() >= MAX_QUEUED:  # a slow client: stop reading until it catches up
                loop.remove_reader(master)
                paused[0] = True

        loop.add_reader(master, readable)
        typing = asyncio.ensure_future(self._typed(reader, master))
        hangups: set[asyncio.Future[int]] = set()

        def client_gone(task: asyncio.Future[None]) -> None:
            # As when a terminal closes: the program gets SIGHUP (SIGKILL if it ignores it).
            if not task.cancelled() and proc.returncode is None:
                hangups.add(asyncio.ensure_future(self._hang_up(proc)))

        typing.add_done_callback(client_gone)
        exited = asyncio.ensure_future(proc.wait())
        code = -1
        try:
            while True:
                # The output ends when the terminal is closed on the other side — or, when something the
                # program left in the background still holds it, a moment after the program exits.
                try:
                    timeout = AFTER_EXIT_S if exited.done() else None
                    chunk = await asyncio.wait_for(_first(output.get(), exited), timeout)
                except TimeoutError:
                    break
                if chunk is None:
                    break
                if isinstance(chunk, bytes):
                    writer.write(data_frames(chunk))
                    await writer.drain()
                if paused[0] and output.qsize() < MAX_QUEUED // 2:
                    paused[0] = False
                    loop.add_reader(master, readable)
            code = await exited
            writer.write(exit_frame(code))
            await writer.drain()
        except (ConnectionError, OSError):
            code = await self._hang_up(proc)
        finally:
            typing.cancel()
            loop.remove_reader(master)
            os.close(master)
            if proc.returncode is None:
                code = await self._hang_up(proc)
            for h in hangups:
                with contextlib.suppress(Exception):
                    await h
        self.on_exit(code)

    async def _typed(self, reader: asyncio.StreamReader, master: int) -> None:
        """What the client sends: keystrokes into the terminal, window sizes onto it; its end, a hang-up."""
        decoder = Decoder()
        try:
            while chunk := await reader.read(READ_CHUNK):
                for frame in decoder.feed(chunk):
                    if frame.kind == DATA:
                        await _write_all(master, frame.payload)
                    elif frame.kind == WINSIZE:
                        set_winsize(master, *frame.winsize)
        except (ConnectionError, OSError, FrameError):
            pass  # returning is the client's end: serve hangs the program up

    async def _hang_up(self, proc: asyncio.subprocess.Process) -> int:
        for sig, wait in ((signal.SIGHUP, HANGUP_GRACE_S), (signal.SIGKILL, None)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                return await asyncio.wait_for(proc.wait(), wait)
            except TimeoutError:
                continue
        return await proc.wait()


async def _first(get: Awaitable[bytes | None], exited: asyncio.Future[int]) -> bytes | None | int:
    """The next output chunk (None: the end), or the exit code if the program exits first with none queued."""
    getting = asyncio.ensure_future(get)
    if exited.done():
        return await getting
    both: set[asyncio.Future[Any]] = {getting, exited}
    done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
    if getting in done:
        return getting.result()
    getting.cancel()
    return exited.result()


async def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            await asyncio.sleep(0.01)  # the terminal's input queue is full: the program is not reading
            continue
        data = data[n:]
