"""The frames of ``shipyard run -i`` against a remote control plane: after ``101 Switching Protocols`` the
connection carries a terminal both ways (control/ptysession.py serves it, cli/ttyclient.py drives it).

A frame is one kind byte, a 4-byte big-endian length, then the payload:

    d  bytes typed (client → server) or written by the program (server → client)
    w  the client's window size: rows, columns (two unsigned 16-bit numbers)
    x  the program's exit code (signed 32-bit), the server's last frame

Pure: encoding, and a decoder fed whatever bytes arrived.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PROTOCOL = "shipyard-tty"
DATA, WINSIZE, EXIT = b"d", b"w", b"x"
MAX_PAYLOAD = 1 << 16
_HEAD = struct.Struct(">cI")


class FrameError(ValueError):
    pass


@dataclass(frozen=True)
class Frame:
    kind: bytes
    payload: bytes

    @property
    def winsize(self) -> tuple[int, int]:
        rows, cols = struct.unpack(">HH", self.payload)
        return int(rows), int(cols)

    @property
    def exit_code(self) -> int:
        return int(struct.unpack(">i", self.payload)[0])


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"frame payload larger than {MAX_PAYLOAD} bytes")
    return _HEAD.pack(kind, len(payload)) + payload


def data_frames(data: bytes) -> bytes:
    return b"".join(encode(DATA, data[i:i + MAX_PAYLOAD]) for i in range(0, len(data), MAX_PAYLOAD))


def winsize_frame(rows: int, cols: int) -> bytes:
    return encode(WINSIZE, struct.pack(">HH", max(0, min(rows, 65535)), max(0, min(cols, 65535))))


def exit_frame(code: int) -> bytes:
    return encode(EXIT, struct.pack(">i", code))


class Decoder:
    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= _HEAD.size:
            kind, length = _HEAD.unpack_from(self._buf)
            if kind not in (DATA, WINSIZE, EXIT) or length > MAX_PAYLOAD:
                raise FrameError(f"bad frame (kind {kind!r}, {length} bytes)")
            if len(self._buf) < _HEAD.size + length:
                break
            out.append(Frame(kind, bytes(self._buf[_HEAD.size:_HEAD.size + length])))
            del self._buf[:_HEAD.size + length]
        return out
