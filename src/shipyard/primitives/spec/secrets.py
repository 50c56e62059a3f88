"""Per-environment secrets, encrypted at rest with AES-256-GCM.

``.shipyard/secrets/<env>.json`` holds, per name, a fresh 12-byte nonce and the ciphertext (the env and
the name are the associated data, so a value cannot be moved to another name or environment unnoticed),
plus a version that increases with every change and a history of which names changed — never a value in
clear. The master key comes from ``SHIPYARD_MASTER_KEY`` (base64 of 32 bytes) or ``.shipyard/master.key``,
generated on first use with mode 0600. Losing the key loses the secrets: they must be set again.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shipyard.errors import BadInput, ConfigError, IntegrityError, NotFound
from shipyard.primitives.clock import Clock, SystemClock
from shipyard.primitives.spec.models import check_env_name, check_var_name

KEY_ENV = "SHIPYARD_MASTER_KEY"
KEY_FILE = "master.key"
FORMAT = 1
MAX_VALUE_BYTES = 64 * 1024


def generate_master_key() -> str:
    """A new master key in the form ``SHIPYARD_MASTER_KEY`` takes (base64 of 32 random bytes)."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


def key_id(key: bytes) -> str:
    """A short fingerprint that tells keys apart without revealing them."""
    return hmac.new(key, b"shipyard master key id", hashlib.sha256).hexdigest()[:16]


def decode_key(text: str, source: str) -> bytes:
    # Accept the URL-safe alphabet and missing padding too: keys get pasted through many tools.
    text = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{source} is not a valid master key: expected the base64 encoding of 32 bytes "
            f"(generate one with: python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')"
        ) from None
    if len(key) != 32:
        raise ConfigError(
            f"{source} is not a valid master key: it decodes to {len(key)} bytes, AES-256 needs exactly 32"
        )
    return key


def _check_env(env: str) -> None:
    try:
        check_env_name(env)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _aad(env: str, name: str) -> bytes:
    return f"shipyard-secret:v{FORMAT}:{env}:{name}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + rename), mode 0600."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


@dataclass(frozen=True)
class SecretInfo:
    name: str
    version: int  # the store version in which this value was last set
    updated_at: float


@dataclass(frozen=True)
class SecretChange:
    version: int
    set: tuple[str, ...]
    unset: tuple[str, ...]
    at: float


class SecretStore:
    """Encrypted secrets of every environment of one project (``state_dir`` is its ``.shipyard``)."""

    def __init__(self, state_dir: Path, *, clock: Clock | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.dir = self.state_dir / "secrets"
        self.key_path = self.state_dir / KEY_FILE
        self._clock = clock or SystemClock()
        self._environ = os.environ if environ is None else environ

    # -- reading (names and versions need no key) ------------------------------------------------

    def version(self, env: str) -> int:
        return int(self._read(env)["version"])

    def names(self, env: str) -> list[str]:
        return sorted(self._read(env)["values"])

    def info(self, env: str) -> list[SecretInfo]:
        values = self._read(env)["values"]
        return [SecretInfo(n, int(v["version"]), float(v["updated_at"])) for n, v in sorted(values.items())]

    def history(self, env: str) -> list[SecretChange]:
        return [
            SecretChange(int(h["version"]), tuple(h["set"]), tuple(h["unset"]), float(h["at"]))
            for h in self._read(env)["history"]
        ]

    def changed_since(self, env: str, version: int) -> list[str]:
        """Names set or unset after ``version`` (for ``deploy --plan``: "secrets changed")."""
        names: set[str] = set()
        for change in self.history(env):
            if change.version > version:
                names.update(change.set, change.unset)
        return sorted(names)

    def values(self, env: str) -> dict[str, str]:
        """The decrypted values; only for building an instance's environment, never for display."""
        doc = self._read(env)
        if not doc["values"]:
            return {}
        key = self._key(create=False)
        return {name: self._decrypt(key, doc, env, name) for name in sorted(doc["values"])}

    # -- writing -------------------------------------------------------------------------------------

    def set(self, env: str, values: Mapping[str, str]) -> int:
        """Set (add or replace) secrets; returns the new version (unchanged when no value changed)."""
        _check_env(env)
        for name, value in values.items():
            self._check_name(name)
            if not isinstance(value, str):
                raise ConfigError(f"secret {name}: value must be text")
            if "\x00" in value:
                raise ConfigError(f"secret {name}: value must not contain a NUL byte")
            if len(value.encode()) > MAX_VALUE_BYTES:
                raise ConfigError(f"secret {name}: value is larger than {MAX_VALUE_BYTES // 1024} KiB")
        if not values:
            return self.version(env)
        with self._locked(env):
            key = self._key(create=True)
            doc = self._read(env)
            changed = [n for n in sorted(values) if n not in doc["values"]
                       or self._decrypt(key, doc, env, n) != values[n]]
            if not changed:
                return int(doc["version"])
            version = int(doc["version"]) + 1
            now = self._clock.time()
            aes = AESGCM(key)
            for name in changed:
                nonce = os.urandom(12)
                ct = aes.encrypt(nonce, values[name].encode(), _aad(env, name))
                doc["values"][name] = {"nonce": _b64(nonce), "ciphertext": _b64(ct), "version": version,
                                       "updated_at": now}
            doc["key_id"] = key_id(key)
            self._commit(env, doc, version, changed, [], now)
            return version

    def unset(self, env: str, names: Iterable[str]) -> int:
        """Remove secrets; every name must exist. Returns the new version."""
        _check_env(env)
        wanted = sorted(set(names))
        if not wanted:
            return self.version(env)
        with self._locked(env):
            doc = self._read(env)
            missing = [n for n in wanted if n not in doc["values"]]
            if missing:
                known = ", ".join(sorted(doc["values"])) or "none"
                raise NotFound(f"no secret {', '.join(missing)} on {env} (known: {known})")
            for name in wanted:
                del doc["values"][name]
            version = int(doc["version"]) + 1
            self._commit(env, doc, version, [], wanted, self._clock.time())
            return version

    # -- internals -----------------------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        try:
            check_var_name(name)
        except ValueError as exc:
            raise ConfigError(f"secret name: {exc}") from None

    def _file(self, env: str) -> Path:
        _check_env(env)  # the name becomes a path: never let it escape the secrets dir
        return self.dir / f"{env}.json"

    def _read(self, env: str) -> dict[str, Any]:
        path = self._file(env)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return {"format": FORMAT, "env": env, "version": 0, "key_id": None, "values": {}, "history": []}
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("env") != env:
                raise ValueError("unexpected layout")
            int(doc["version"])
            dict(doc["values"])
            list(doc["history"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{path} is not a valid secrets file ({exc})") from None
        return doc

    def _commit(self, env: str, doc: dict[str, Any], version: int, set_: list[str], unset: list[str],
                now: float) -> None:
        doc["version"] = version
        doc["history"].append({"version": version, "set": set_, "unset": unset, "at": now})
        private_dir(self.dir)
        write_private(self._file(env), json.dumps(doc, indent=1, sort_keys=True).encode())

    def _decrypt(self, key: bytes, doc: dict[str, Any], env: str, name: str) -> str:
        entry = doc["values"][name]
        try:
            nonce = base64.b64decode(entry["nonce"], validate=True)
            ct = base64.b64decode(entry["ciphertext"], validate=True)
            return AESGCM(key).decrypt(nonce, ct, _aad(env, name)).decode()
        except InvalidTag:
            stored = doc.get("key_id")
            if stored and stored != key_id(key):
                raise ConfigError(
                    f"secrets for {env} cannot be decrypted with this master key (they were written with key "
                    f"{stored}, the current key is {key_id(key)}); set {KEY_ENV} to the key they were written "
                    f"with or restore {self.key_path}, or set the secrets again"
                ) from None
            raise IntegrityError(
                f"secret {name} for {env} failed authentication: {self._file(env)} was modified or corrupted"
            ) from None
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise IntegrityError(f"secret {name} for {env} is malformed in {self._file(env)}") from None

    def _key(self, *, create: bool) -> bytes:
        text = self._environ.get(KEY_ENV, "")
        if text.strip():
            return decode_key(text, KEY_ENV)
        try:
            st = self.key_path.stat()
        except FileNotFoundError:
            return self._new_key() if create else self._lost_key()
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise ConfigError(
                f"{self.key_path} is readable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {self.key_path}"
            )
        return decode_key(self.key_path.read_text(encoding="ascii", errors="replace"), str(self.key_path))

    def _lost_key(self) -> NoReturn:
        raise ConfigError(
            f"secrets exist but there is no master key: {self.key_path} is missing and {KEY_ENV} is not set "
            f"(set {KEY_ENV} to the key they were written with, or set the secrets again after removing "
            f"{self.dir})"
        )

    def _new_key(self) -> bytes:
        # Existing secrets with no key means the key was lost: a new one would silently orphan them.
        # (The key is always linked before the first secrets file is written, so look for it again first.)
        if self.key_path.exists():
            return self._key(create=False)
        if self.dir.is_dir() and any(p.suffix == ".json" for p in self.dir.iterdir()):
            self._lost_key()
        private_dir(self.state_dir)
        text = generate_master_key()
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=".master.key.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            # link, not rename: if another process created the key meanwhile, theirs wins and we use it.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.key_path)
        finally:
            os.unlink(tmp)
        return self._key(create=False)

    @contextlib.contextmanager
    def _locked(self, env: str) -> Iterator[None]:
        private_dir(self.dir)
        fd = os.open(self.dir / f".{env}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
