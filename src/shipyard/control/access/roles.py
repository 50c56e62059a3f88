"""Roles and what each may do; the table of every API route → the capability it needs.

Capabilities: ``read`` (status, history, logs, metrics…), ``deploy`` (deploy, rollback, run, canary
control, lock, backups), ``approve`` (approve/reject a waiting deployment), ``admin`` (tokens, secrets,
window overrides, down, restore). Roles bundle them: deployer and approver are separate on purpose (a CI
job that deploys cannot also approve its own deploy); admin has everything.
"""

from __future__ import annotations

from typing import Any, Literal

from shipyard.errors import BadInput, NotPermitted

Capability = Literal["read", "deploy", "approve", "admin"]
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "deployer": frozenset({"read", "deploy"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset({"read", "deploy", "approve", "admin"}),
}
# The smallest role holding each capability: what a refusal says is needed.
NEEDED = {"read": "viewer", "deploy": "deployer", "approve": "approver", "admin": "admin"}

# Every route. GETs not listed need `read`; POSTs not listed need `admin` (a new route is closed by default).
ROUTES: dict[tuple[str, str], Capability] = {
    ("POST", "/v1/deploy"): "deploy",
    ("POST", "/v1/rollback"): "deploy",
    ("POST", "/v1/canary"): "deploy",
    ("POST", "/v1/run"): "deploy",
    ("POST", "/v1/run/done"): "deploy",
    ("POST", "/v1/lock"): "deploy",
    ("POST", "/v1/backups/run"): "deploy",
    ("POST", "/v1/backups/verify"): "deploy",
    ("POST", "/v1/backups/drill"): "deploy",
    ("POST", "/v1/backups/restore"): "admin",
    ("POST", "/v1/backups/forget"): "admin",
    ("POST", "/v1/approve"): "approve",
    ("POST", "/v1/reject"): "approve",
    ("POST", "/v1/secrets"): "admin",
    ("POST", "/v1/tokens"): "admin",
    ("POST", "/v1/tokens/revoke"): "admin",
    ("GET", "/v1/tokens"): "admin",
    ("POST", "/v1/down"): "admin",
    ("POST", "/v1/silences"): "deploy",  # the on-call silences what they are fixing
    ("POST", "/v1/silences/expire"): "deploy",
    ("POST", "/v1/notify/test"): "deploy",
    ("POST", "/v1/jobs/run"): "deploy",  # runs a command with the environment's secrets, as `run` does
    ("POST", "/v1/accessories"): "deploy",
    ("POST", "/v1/incident"): "deploy",  # incidents and maintenance: operators (control/faces_api.py)
    ("POST", "/v1/maintenance"): "deploy",
    ("POST", "/v1/dashboard/link"): "read",  # a login link for the caller's own identity and role
}


def check_role(role: str, where: str = "--role") -> str:
    if role not in ROLES:
        raise BadInput(f"{where}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
    return role


def needed(method: str, path: str, body: dict[str, Any]) -> Capability:
    cap = ROUTES.get((method, path))
    if cap is None:
        cap = "read" if method == "GET" else "admin"
    if path == "/v1/deploy" and body.get("override_window"):
        cap = "admin"  # deploying outside a window is an admin's call, and audited
    return cap


def refuse(name: str, role: str, cap: str) -> NotPermitted:
    return NotPermitted(f"{name} (role {role}) may not do this: it needs the {NEEDED[cap]} role"
                        + ("" if cap == "admin" else " or admin"))
