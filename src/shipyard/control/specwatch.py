"""The spec as the control plane's background tasks see it (the recorder, the alert evaluator).

Request handlers take one snapshot per request through ``SpecSource`` (counted); a task that runs every
few seconds reads the file again only when it changed (mtime, size), and keeps the last good spec while
the file is invalid — a typo in shipyard.toml must not stop alerting.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shipyard.errors import ShipyardError
from shipyard.primitives.spec import Spec, find_spec_file, load_spec

log = logging.getLogger("shipyard.control")


class SpecWatch:
    def __init__(self, project: Path) -> None:
        self.project = project
        self._key: tuple[str, int, int] | None = None
        self._spec: Spec | None = None
        self.error: str | None = None

    def current(self) -> Spec | None:
        """The newest valid spec (None before the first valid one)."""
        path = find_spec_file(self.project)
        if path is None:
            return self._spec
        try:
            st = path.stat()
        except OSError:
            return self._spec
        key = (str(path), st.st_mtime_ns, st.st_size)
        if key != self._key:
            self._key = key
            try:
                self._spec, self.error = load_spec(path), None
            except ShipyardError as err:
                if self.error != str(err):
                    log.warning("shipyard.toml is invalid; alerting keeps the last valid rules: %s", err)
                self.error = str(err)
        return self._spec
