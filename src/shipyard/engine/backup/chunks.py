"""Chunked AES-256-GCM framing of one stored backup file.

Layout: ``header · record*`` where the header is ``MAGIC · u32 chunk_size · u16 len · backup id`` and each
record is ``nonce(12) · ciphertext · tag(16)`` of at most ``chunk_size`` plaintext bytes. Every record but
the last holds exactly ``chunk_size`` bytes, so record ``i`` sits at a computable offset (random access for
``--read-data-subset``). The associated data of record ``i`` is ``header · u64 i · u8 is_last``: a record moved
to another position (swap), cut off at the end (truncation), appended, or taken from another backup fails
authentication. The header itself is authenticated through every record's associated data.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shipyard.errors import IntegrityError

MAGIC = b"SHYBAK\x00\x01"
NONCE = 12
TAG = 16
DEFAULT_CHUNK = 1 << 20


def make_header(backup_id: str, chunk_size: int) -> bytes:
    raw = backup_id.encode()
    return MAGIC + struct.pack(">IH", chunk_size, len(raw)) + raw


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, 1 if last else 0)


class ChunkWriter:
    """Encrypts a byte stream into records written to ``out``; ``close()`` seals the last record."""

    def __init__(self, out: BinaryIO, key: bytes, backup_id: str, chunk_size: int = DEFAULT_CHUNK) -> None:
        self._out = out
        self._aead = AESGCM(key)
        self._chunk = chunk_size
        self._header = make_header(backup_id, chunk_size)
        self._buf = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._emit(self._header)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.sha256.update(data)
        self.size += len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = os.urandom(NONCE)
        self._emit(nonce + self._aead.encrypt(nonce, plain, _aad(self._header, self._index, last)))
        self._index += 1

    def write(self, data: bytes) -> None:
        self._buf += data
        # Keep at least one byte back: only close() knows which record is the last.
        while len(self._buf) > self._chunk:
            self._seal(bytes(self._buf[: self._chunk]), last=False)
            del self._buf[: self._chunk]

    def close(self) -> int:
        """Seals the final record; returns the number of records."""
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()
        return self._index


class ChunkReader:
    """Reads and authenticates the records of one stored backup file."""

    def __init__(self, src: BinaryIO, key: bytes, backup_id: str, *, label: str, size: int) -> None:
        self._src = src
        self._aead = AESGCM(key)
        self._label = label
        self.sha256 = hashlib.sha256()
        head = self._read_exact(len(MAGIC) + 6)
        if head[: len(MAGIC)] != MAGIC:
            raise IntegrityError(f"{label}: not a shipyard backup file (bad magic bytes)")
        self.chunk_size, id_len = struct.unpack(">IH", head[len(MAGIC):])
        if id_len != len(backup_id.encode()):
            raise IntegrityError(f"{label}: the file header is corrupted (backup id length {id_len})")
        stored_id = self._read_exact(id_len)
        if stored_id != backup_id.encode():
            raise IntegrityError(f"{label}: the file holds backup {stored_id.decode(errors='replace')!r}, "
                                 f"not {backup_id!r} (files swapped or header corrupted)")
        self.header = head + stored_id
        self._record = NONCE + self.chunk_size + TAG
        body = size - len(self.header)
        self.chunks = max(0, -(-body // self._record))
        if body < NONCE + TAG or self.chunk_size <= 0:
            raise IntegrityError(f"{label}: the stored data is truncated (no complete record)")

    def _read_exact(self, n: int) -> bytes:
        data = self._src.read(n)
        self.sha256.update(data)
        if len(data) != n:
            raise IntegrityError(f"{self._label}: the stored data is truncated (header incomplete)")
        return data

    def _open(self, record: bytes, index: int) -> bytes:
        last = index == self.chunks - 1
        if len(record) < NONCE + TAG or (not last and len(record) != self._record):
            raise IntegrityError(f"{self._label}: chunk {index} of {self.chunks} is truncated")
        try:
            return self._aead.decrypt(record[:NONCE], record[NONCE:], _aad(self.header, index, last))
        except InvalidTag:
            raise IntegrityError(
                f"{self._label}: chunk {index} of {self.chunks} failed authentication — the stored data is "
                "corrupted, truncated or reordered") from None

    def __iter__(self) -> Iterator[bytes]:
        for index in range(self.chunks):
            record = self._src.read(self._record)
            self.sha256.update(record)
            yield self._open(record, index)
        if self._src.read(1):
            raise IntegrityError(f"{self._label}: unexpected data after the last chunk")

    def read_chunk(self, index: int) -> bytes:
        """Random access (the source must be seekable); does not feed ``sha256``."""
        self._src.seek(len(self.header) + index * self._record)
        return self._open(self._src.read(self._record), index)
