"""The dashboard (docs/dashboard.md): served by the control plane on 127.0.0.1; token or one-time-link
login → an HttpOnly, SameSite=Strict session cookie; every action POST carries the session's CSRF token;
roles apply (a viewer sees, cannot act: 403)."""
