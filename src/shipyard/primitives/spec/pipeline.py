"""The spec's release command and hooks: shell commands shipyard runs around a deployment.

``[app] release`` (one command or a list) runs once per deploy inside the new release, with that
environment's whole configuration and secrets, after the build and before any instance of the new release
takes traffic; ``[environments.X] release`` overrides it (``release = ""`` skips it there). ``[hooks]``:
``pre_build`` and ``pre_deploy`` abort the deploy when they fail; ``post_deploy`` and ``post_rollback``
are recorded and shown when they fail, never undo anything.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from shipyard.primitives.spec.base import Duration, SpecModel

HOOKS = ("pre_build", "pre_deploy", "post_deploy", "post_rollback")


def commands(value: Any) -> Any:
    """``"cmd"`` → ``["cmd"]``, ``""`` → ``[]`` (nothing to run), a list as is."""
    if isinstance(value, str):
        return [value] if value.strip() else []
    return value


Commands = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(commands)]
CommandTimeout = Annotated[Duration, Field(gt=0, le=24 * 3600)]


class HooksSpec(SpecModel):
    pre_build: Commands = []
    pre_deploy: Commands = []
    post_deploy: Commands = []
    post_rollback: Commands = []
    timeout: CommandTimeout = 300.0  # each hook command's

    def of(self, hook: str) -> list[str]:
        cmds: list[str] = getattr(self, hook)
        return cmds
