"""``[environments.X.approval]``: a deploy there waits for approvals from other identities before it starts.

    [environments.prod.approval]
    required = 1                 # distinct identities with the approver (or admin) role
    prevent_self_review = true   # the identity that asked cannot approve its own deploy
    timeout = "24h"              # unanswered this long: the deployment ends `expired`

Rollbacks and aborts never wait (control/deploys/approvals.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt

from shipyard.primitives.spec.base import Duration, SpecModel

MAX_APPROVERS = 10


class ApprovalSpec(SpecModel):
    required: Annotated[StrictInt, Field(ge=1, le=MAX_APPROVERS)] = 1
    prevent_self_review: StrictBool = True
    timeout: Annotated[Duration, Field(ge=1, le=30 * 86400)] = 24 * 3600.0

    def to_json(self) -> dict[str, Any]:
        return {"required": self.required, "prevent_self_review": self.prevent_self_review,
                "timeout_s": self.timeout}


def orphan_approval(name: str, own: Any, defaults: Mapping[str, Any]) -> str | None:
    """Why ``[environments.NAME.approval]`` names no environment (a table with no port of its own or from
    ``[defaults]``: a misspelt environment), or None."""
    if isinstance(own, dict) and "approval" in own and "port" not in own and "port" not in defaults:
        return (f"approval settings for environment {name!r}, which is not defined (it has no port): "
                "check the environment's name")
    return None
