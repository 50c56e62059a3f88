"""Where the control plane reads shipyard.toml: once per request, counted.

Every request handler takes one snapshot (``load()``) and passes that value down; nothing below the
handlers reads the file. ``loads`` (shown by ``GET /v1/ping``) lets a test prove it.
"""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import BadInput
from shipyard.primitives.spec import Spec, find_spec_file, load_spec


class SpecSource:
    def __init__(self, project: Path) -> None:
        self.project = project
        self.loads = 0

    def load(self) -> Spec:
        path = find_spec_file(self.project)
        if path is None:
            raise BadInput(f"no shipyard.toml in {self.project}")
        self.loads += 1
        return load_spec(path)
