"""What every CLI command shares: project discovery, error exit, JSON output."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from shipyard.errors import ShipyardError


@dataclass(frozen=True)
class Project:
    """The project in the current directory: its spec file's directory and its ``.shipyard`` state dir."""

    dir: Path

    @property
    def state_dir(self) -> Path:
        return self.dir / ".shipyard"


def find_project(start: Path | None = None) -> Project:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / n).exists() for n in ("shipyard.toml", "shipyard.yaml", "shipyard.yml")):
            return Project(candidate)
    from shipyard.errors import ConfigError

    raise ConfigError(f"no shipyard.toml in {here} or its parents (run 'shipyard init' to write one)")


def abort(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def fail(err: ShipyardError) -> NoReturn:
    text = str(err)
    lines = text.splitlines() or [text]
    print(f"error: {lines[0]}", file=sys.stderr)
    for line in lines[1:]:
        print(f"  {line}", file=sys.stderr)
    raise SystemExit(err.exit_code)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def spec_file(project: Project) -> Path:
    for name in ("shipyard.toml", "shipyard.yaml", "shipyard.yml"):
        if (project.dir / name).exists():
            return project.dir / name
    return project.dir / "shipyard.toml"


def load_project_spec(project: Project | None = None) -> Any:
    """Load and validate the project's spec (ConfigError → exit 2 with one line per problem)."""
    from shipyard.primitives.spec import load_spec

    project = project or find_project()
    return load_spec(spec_file(project))
