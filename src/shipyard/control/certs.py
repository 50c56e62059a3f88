"""The router's TLS certificates as the control plane sees them: when each environment's expires.

Read from the files ``[environments.X.router] tls.cert`` names (relative to the project), the leaf
certificate (the first in the chain file) counts. Cached by the file's mtime and size, so a scrape or an
evaluation every few seconds reads a file only after it changed (the router reloads it then too).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509

from shipyard.primitives.spec import Spec

log = logging.getLogger("shipyard.control")


class CertExpiry:
    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], float | None]] = {}

    def of_file(self, path: Path) -> float | None:
        """The leaf certificate's notAfter (epoch seconds); None when the file is missing or not a PEM."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            value: float | None = cert.not_valid_after_utc.timestamp()
        except (OSError, ValueError) as exc:
            log.warning("cannot read the certificate %s: %s", path, exc)
            value = None
        self._cache[path] = (key, value)
        return value

    def by_env(self, spec: Spec) -> dict[str, float]:
        """Every environment with TLS: its certificate's expiry (epoch seconds)."""
        out: dict[str, float] = {}
        for name in spec.env_names:
            tls = spec.env(name).router.tls
            if tls is None:
                continue
            path = Path(tls.cert)
            at = self.of_file(path if path.is_absolute() else spec.project_dir / path)
            if at is not None:
                out[name] = at
        return out
