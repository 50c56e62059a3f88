"""Blobs and sealed documents: everything a repository stores, except ``config``, is one of these.

* A **blob** is one content-defined chunk of a backup stream: ``nonce(12) · AES-256-GCM(zstd(chunk))``
  under the repository's data key, stored as ``data/<id[:2]>/<id>``. Its id is an HMAC-SHA256 of the
  plaintext under a key derived from the backup key — equal chunks get equal ids (deduplication) while the
  id reveals nothing (a plain hash would let anyone holding a guess confirm it is in the backup). The id is
  the associated data, so a blob renamed or swapped for another fails authentication, and the id is
  re-computed from the decrypted plaintext on every read.
* A **sealed document** (a snapshot: the manifest of one backup) is ``nonce · AES-256-GCM(zstd(json))``
  with its object name as associated data. Table names, row counts, paths and sizes live only in there.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shipyard.errors import IntegrityError

NONCE = 12
TAG = 16
ZSTD_LEVEL = 1  # per ~320 KiB chunk: level 3 stored the same on pgbench data and cost 0.37 s more (docs/benchmarks.md)


def blob_name(blob_id: str) -> str:
    return f"data/{blob_id[:2]}/{blob_id}"


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


@dataclass
class Sealer:
    """The repository's crypto: blob ids, blob and document encryption (safe to share between threads)."""

    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        self._id_key = _derive(self.material, b"shipyard-backup/2 blob-id")
        self._data = AESGCM(_derive(self.material, b"shipyard-backup/2 blob"))
        self._docs = AESGCM(_derive(self.material, b"shipyard-backup/2 document"))
        self._local = threading.local()  # zstd contexts are not thread-safe: one per thread

    @property
    def _zc(self) -> zstandard.ZstdCompressor:
        zc: zstandard.ZstdCompressor | None = getattr(self._local, "zc", None)
        if zc is None:
            zc = self._local.zc = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return zc

    @property
    def _zd(self) -> zstandard.ZstdDecompressor:
        zd: zstandard.ZstdDecompressor | None = getattr(self._local, "zd", None)
        if zd is None:
            zd = self._local.zd = zstandard.ZstdDecompressor()
        return zd

    def blob_id(self, plain: bytes | memoryview) -> str:
        return hmac.new(self._id_key, plain, hashlib.sha256).hexdigest()

    def seal_blob(self, blob_id: str, plain: bytes | memoryview) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._data.encrypt(nonce, self._zc.compress(plain), blob_id.encode())

    def open_blob(self, blob_id: str, stored: bytes, label: str) -> bytes:
        if len(stored) < NONCE + TAG:
            raise IntegrityError(f"{label}: blob {blob_id[:12]} is truncated")
        try:
            plain = self._zd.decompress(self._data.decrypt(stored[:NONCE], stored[NONCE:], blob_id.encode()))
        except InvalidTag:
            raise IntegrityError(f"{label}: blob {blob_id[:12]} failed authentication — the stored data is "
                                 "corrupted, truncated or swapped") from None
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{label}: blob {blob_id[:12]} does not decompress ({exc})") from exc
        if not hmac.compare_digest(self.blob_id(plain), blob_id):
            raise IntegrityError(f"{label}: blob {blob_id[:12]} holds other data than its id says")
        return plain

    def seal_doc(self, name: str, body: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._docs.encrypt(nonce, self._zc.compress(body), name.encode())

    def open_doc(self, name: str, stored: bytes, label: str) -> bytes:
        try:
            return self._zd.decompress(self._docs.decrypt(stored[:NONCE], stored[NONCE:], name.encode()))
        except (InvalidTag, ValueError):
            raise IntegrityError(f"{label}: {name} failed authentication (corrupted, truncated or edited)") \
                from None
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"{label}: {name} does not decompress ({exc})") from exc
