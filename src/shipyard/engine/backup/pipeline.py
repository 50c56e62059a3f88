"""The streamed pipeline: source bytes → SHA-256 → zstd → AES-256-GCM chunks → file, and back.

Nothing is held whole in memory (one chunk plus zstd's window) and no plaintext touches the disk.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from shipyard.engine.backup.chunks import DEFAULT_CHUNK, ChunkReader, ChunkWriter
from shipyard.engine.backup.keys import BackupKey
from shipyard.engine.backup.manifest import Manifest
from shipyard.errors import IntegrityError

ZSTD_LEVEL = 3
_BLOCK = 1 << 20


@dataclass(frozen=True)
class StreamStats:
    plain_size: int
    plain_sha256: str
    stored_size: int
    stored_sha256: str
    chunks: int
    chunk_size: int


class EncryptingSink:
    """A write-only file object: what sources write ends up compressed and encrypted in ``out``."""

    def __init__(self, out: BinaryIO, key: BackupKey, backup_id: str, *, chunk_size: int = DEFAULT_CHUNK,
                 threads: int = 1) -> None:
        self._chunks = ChunkWriter(out, key.data_key(backup_id), backup_id, chunk_size)
        self._chunk_size = chunk_size
        # threads > 1 makes zstd compress on worker threads (0 = in the caller's thread).
        self._zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads if threads > 1 else 0)
        self._cobj = self._zstd.compressobj()
        self._plain = hashlib.sha256()
        self._plain_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._plain.update(data)
        self._plain_size += len(data)
        out = self._cobj.compress(bytes(data))
        if out:
            self._chunks.write(out)
        return len(data)

    def flush(self) -> None:  # tarfile calls it; records are sealed only by close()
        pass

    def close(self) -> StreamStats:
        self._chunks.write(self._cobj.flush())
        chunks = self._chunks.close()
        return StreamStats(self._plain_size, self._plain.hexdigest(), self._chunks.size,
                           self._chunks.sha256.hexdigest(), chunks, self._chunk_size)


def decrypted(src: BinaryIO, manifest: Manifest, key: BackupKey, *, label: str) -> Iterator[bytes]:
    """Plaintext blocks of a stored backup; raises IntegrityError (after the last block at the latest)
    when anything does not match the manifest."""
    reader = ChunkReader(src, key.data_key(manifest.id), manifest.id, label=label, size=manifest.stored_size)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    plain = hashlib.sha256()
    size = 0
    try:
        for chunk in reader:
            block = dobj.decompress(chunk)
            if block:
                plain.update(block)
                size += len(block)
                yield block
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"{label}: compressed stream is invalid ({exc})") from exc
    if reader.sha256.hexdigest() != manifest.stored_sha256:
        raise IntegrityError(f"{label}: SHA-256 of the stored file does not match the manifest")
    if size != manifest.plain_size or plain.hexdigest() != manifest.plain_sha256:
        raise IntegrityError(f"{label}: SHA-256 of the restored data does not match the manifest")


class StreamReader(io.RawIOBase):
    """A read-only file object over an iterator of blocks (for tarfile's stream mode)."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._blocks, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def drain(blocks: Iterator[bytes]) -> None:
    for _ in blocks:
        pass
