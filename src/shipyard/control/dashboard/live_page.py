"""The live deploy / canary page (pure): a frame that static/live.js fills from the server-sent events of
/events (the first document is in the page, so it shows at once); the canary and approval actions are
forms carrying the CSRF token."""

from __future__ import annotations

from html import escape
from typing import Any

from shipyard.control.dashboard.layout import action_form, data_block, env_picker, frame

CANARY_ACTIONS = (("promote", "Promote (end this step)"), ("promote_full", "Promote fully"),
                  ("pause", "Pause"), ("resume", "Resume"), ("abort", "Abort"))


def live_page(app: str, who: str, role: str, csrf: str, envs: list[str], env: str, first: dict[str, Any],
              flash: str = "", may_deploy: bool = True, may_approve: bool = True) -> str:
    """``may_deploy`` / ``may_approve``: whether to show the canary and rollback / the approval buttons (a
    viewer sees none; the server refuses its POSTs all the same)."""
    back = f"/live?env={env}"
    buttons = " ".join(action_form(csrf, a, label, {"env": env}, back=back, css=f"canary-{a}")
                       for a, label in CANARY_ACTIONS) if may_deploy else ""
    rollback = action_form(csrf, "rollback", "Roll back", {"env": env}, back=back, css="rollback") if may_deploy else ""
    body = (f"{env_picker('/live', envs, env)}"
            f"<div id=\"live\" data-env=\"{escape(env)}\" data-state=\"connecting\">"
            f"<h2>{escape(env)} <small id=\"conn\" class=\"muted\">connecting…</small></h2>"
            "<p class=\"kv\"><b>serving <span id=\"release\">-</span></b><b>weights <span id=\"weights\">-</span></b></p>"
            "<section id=\"canary\" hidden><h3>Canary <span id=\"canary-release\"></span> vs stable "
            "<span id=\"canary-stable\"></span></h3>"
            "<p class=\"kv\"><b>step <span id=\"step\">-</span></b><b>canary weight <span id=\"weight\">-</span>%</b>"
            "<span class=\"bar\"><span id=\"weight-bar\" style=\"width:0\"></span></span></p>"
            "<p id=\"step-text\" class=\"muted\"></p><p><b>next step:</b> <span id=\"next\">-</span></p>"
            "<p><b>decision:</b> <span id=\"decision\">-</span></p>"
            "<h4>Judgement <span id=\"verdict-outcome\"></span> <small id=\"verdict-window\" class=\"muted\"></small></h4>"
            "<table id=\"verdict\"><thead><tr><th>check</th><th>outcome</th><th>canary</th><th>stable</th>"
            "<th>p-value</th><th>tolerance</th><th>samples (canary / stable)</th><th>reason</th></tr></thead>"
            "<tbody></tbody></table><div id=\"firing\"></div>"
            f"<div id=\"canary-actions\">{buttons}</div></section>"  # a div: a <form> would close a <p>
            "<section id=\"deployment\" hidden><h3>Deployment <span id=\"dep-title\"></span></h3>"
            "<ol id=\"steps\"></ol></section>"
            "<section id=\"waiting\" hidden><h3>Waiting for approval</h3><div id=\"waiting-list\"></div></section>"
            "<section id=\"watch\" hidden><h3>Post-deploy watch</h3><p id=\"watch-text\"></p></section>"
            "<p id=\"last\" class=\"muted\"></p>"
            "<h3>Recent events</h3><table id=\"events\"><tbody></tbody></table>"
            f"<div class=\"actions\">{rollback}</div></div>"
            + data_block("live-init", {"env": env, "csrf": csrf, "first": first, "approve": may_approve}))
    return frame(app, "/live", who, role, csrf, env, body, flash=flash, title=f"{env} live — {app}",
                 scripts=("live.js",))
