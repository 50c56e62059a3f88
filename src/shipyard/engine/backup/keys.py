"""The backup key: 32 random bytes from the env's ``BACKUP_KEY`` secret or ``.shipyard/backup.key`` (0600).

Everything else is derived from it with HKDF-SHA256, so one secret gives a per-backup data key (AES-256-GCM),
a manifest MAC key and a short public key id that repositories record to refuse a wrong key up front.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shipyard.errors import BadInput, ConfigError

KEY_BYTES = 32
_HOW = "generate one with `openssl rand -base64 32`"


@dataclass(frozen=True)
class BackupKey:
    material: bytes = field(repr=False)
    origin: str  # "secret BACKUP_KEY" or the key file path, for messages

    def _derive(self, info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self.material)

    @property
    def key_id(self) -> str:
        """Public fingerprint (not secret): tells which key a repository was written with."""
        return hmac.new(self.material, b"shipyard-backup key-id", hashlib.sha256).hexdigest()[:16]

    def data_key(self, backup_id: str) -> bytes:
        # One key per backup: random 96-bit nonces then never meet across backups.
        return self._derive(b"shipyard-backup data|" + backup_id.encode())

    def mac(self, payload: bytes) -> str:
        return hmac.new(self._derive(b"shipyard-backup manifest"), payload, hashlib.sha256).hexdigest()


def decode_key(text: str, origin: str) -> BackupKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{origin} must be base64 of {KEY_BYTES} random bytes ({_HOW})")
    return BackupKey(raw, origin)


def load_key(secret: str | None, key_file: Path, *, create: bool) -> BackupKey:
    """The key from the ``BACKUP_KEY`` secret when set, else from ``key_file``; generated there when
    ``create`` (backups are being written) and it does not exist yet."""
    if secret:
        return decode_key(secret, "secret BACKUP_KEY")
    if key_file.exists():
        mode = key_file.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{key_file} is readable by others (mode {mode:o}); run chmod 600 {key_file}")
        return decode_key(key_file.read_text(), str(key_file))
    if not create:
        raise BadInput(f"no backup key: BACKUP_KEY is not a secret of this environment and {key_file} does "
                       "not exist (backups cannot be read without the key they were written with)")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode() + "\n")
    return load_key(None, key_file, create=False)
