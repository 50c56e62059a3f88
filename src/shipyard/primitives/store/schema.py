"""Tables of the state database (SQLAlchemy Core), as the migrations leave them at head.

A test compares this metadata with a freshly migrated database, so a change here needs a migration in
``migrations/versions/``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class JSONText(sa.TypeDecorator[Any]):
    """JSON kept as TEXT: the same bytes on SQLite and PostgreSQL, NULL stays NULL."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = sa.MetaData()

releases = sa.Table(
    "releases", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("commit_sha", sa.Text, nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("build_duration_s", sa.Float, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("spec", JSONText, nullable=False),
    sa.Column("secrets_version", sa.Integer, nullable=False),
    sa.Column("build_log", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Index("ix_releases_created_at", "created_at"),
)

environments = sa.Table(
    "environments", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("current_release", sa.Text, nullable=True),
    sa.Column("previous_release", sa.Text, nullable=True),
    sa.Column("routing", JSONText, nullable=True),
    sa.Column("secrets_version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

deployments = sa.Table(
    "deployments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("release", sa.Text, nullable=False),
    sa.Column("previous_release", sa.Text, nullable=True),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("plan", JSONText, nullable=False),
    sa.Column("detail", JSONText, nullable=True),
    sa.Index("ix_deployments_env_id", "env", "id"),
    sa.Index("ix_deployments_status", "status"),
)

# One row per environment with a deployment running: the primary key makes the lock atomic.
locks = sa.Table(
    "locks", metadata,
    sa.Column("env", sa.Text, primary_key=True),
    sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id", name="fk_locks_deployment"),
              nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
)

steps = sa.Table(
    "steps", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.Integer,
              sa.ForeignKey("deployments.id", name="fk_steps_deployment", ondelete="CASCADE"), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("detail", JSONText, nullable=True),
    sa.Index("ix_steps_deployment_idx", "deployment_id", "idx"),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", JSONText, nullable=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_events_env_id", "env", "id"),
    sa.Index("ix_events_at", "at"),  # revision 0006
)

instances = sa.Table(
    "instances", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("release", sa.Text, nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("create_time", sa.Float, nullable=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("process", sa.Text, nullable=False, server_default="web"),  # its process type (0007)
    sa.Index("ix_instances_env", "env"),
)

# Runs of `[jobs]` (0007): one row per run, the output's tail kept.
job_runs = sa.Table(
    "job_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("release", sa.Text, nullable=True),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("scheduled_for", sa.Float, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("output_tail", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_job_runs_env_job_id", "env", "job", "id"),
)

# Images built of releases (`shipyard image build`, revision 0012): the tag pushed and the digest the registry
# answered, which kubernetes deploys of the release reference.
release_images = sa.Table(
    "release_images", metadata,
    sa.Column("release", sa.Text, primary_key=True),
    sa.Column("image", sa.Text, nullable=False),  # repository:tag
    sa.Column("digest", sa.Text, nullable=True),  # sha256:…; NULL until pushed
    sa.Column("commit_sha", sa.Text, nullable=False),
    sa.Column("dockerfile", sa.Text, nullable=False),  # "repository" | "generated"
    sa.Column("built_at", sa.Float, nullable=False),
    sa.Column("build_duration_s", sa.Float, nullable=False),
    sa.Column("push_duration_s", sa.Float, nullable=True),
)

backup_runs = sa.Table(
    "backup_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("backup_id", sa.Text, nullable=True),
    sa.Column("detail", JSONText, nullable=True),
    sa.Index("ix_backup_runs_env_id", "env", "id"),
)

drills = sa.Table(
    "drills", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("detail", JSONText, nullable=False),
    sa.Index("ix_drills_env_id", "env", "id"),
)

# -- metric history and alert states (revision 0002; written by control/metrics_recorder.py, control/alerts.py) --

# One env × release over [t, t + 10 s) ("raw") or [t, t + 60 s) ("minute"); `hist` (raw only) is the
# latency histogram as "index:count,..." (see store/history.py).
metric_points = sa.Table(
    "metric_points", metadata,
    sa.Column("resolution", sa.Text, primary_key=True),
    sa.Column("env", sa.Text, primary_key=True),
    sa.Column("release", sa.Text, primary_key=True),
    sa.Column("t", sa.BigInteger, primary_key=True),
    sa.Column("requests", sa.BigInteger, nullable=False),
    sa.Column("errors", sa.BigInteger, nullable=False),
    sa.Column("p50", sa.Float, nullable=True),
    sa.Column("p95", sa.Float, nullable=True),
    sa.Column("p99", sa.Float, nullable=True),
    sa.Column("cpu", sa.Float, nullable=True),
    sa.Column("rss", sa.BigInteger, nullable=True),
    sa.Column("memory", sa.Float, nullable=True),
    sa.Column("up", sa.Integer, nullable=False),
    sa.Column("instances", sa.Integer, nullable=False),
    sa.Column("health_failures", sa.Integer, nullable=False),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("hist", sa.Text, nullable=True),
    sa.Index("ix_metric_points_env_t", "resolution", "env", "t"),
)

alert_states = sa.Table(
    "alert_states", metadata,
    sa.Column("rule", sa.Text, primary_key=True),
    sa.Column("env", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("changed_at", sa.Float, nullable=True),
)

# -- manual locks (revision 0003; `shipyard lock`) ----------------------------------------------------------

manual_locks = sa.Table(
    "manual_locks", metadata,
    sa.Column("env", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
)

# -- identities, audit, approvals (revision 0004; control/access, control/deploys/approvals.py) ---------------

# A token's clear value is never stored: `digest` is the SHA-256 of the whole token, `token_id` its public
# prefix (the lookup key). `envs` is a JSON list (None: every environment).
tokens = sa.Table(
    "tokens", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("token_id", sa.Text, nullable=False, unique=True),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("envs", JSONText, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("last_used_at", sa.Float, nullable=True),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("performer", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("env", sa.Text, nullable=True),
    sa.Column("target", sa.Text, nullable=True),
    sa.Column("detail", JSONText, nullable=True),
    sa.Index("ix_audit_env_id", "env", "id"),
)

approvals = sa.Table(
    "approvals", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("deployment_id", sa.Integer,
              sa.ForeignKey("deployments.id", name="fk_approvals_deployment", ondelete="CASCADE"), nullable=False),
    sa.Column("identity", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("deployment_id", "identity", name="uq_approvals_deployment_identity"),
)


# -- notifications (revision 0005; engine/alerting/notify.py) ------------------------------------------------

notify_groups = sa.Table(
    "notify_groups", metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("next_flush_at", sa.Float, nullable=False),
    sa.Column("data", JSONText, nullable=False),
)

notify_deliveries = sa.Table(
    "notify_deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("env", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # pending | delivered | failed
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("delivered_at", sa.Float, nullable=True),
    sa.Index("ix_notify_deliveries_status", "status", "next_attempt_at"),
)

silences = sa.Table(
    "silences", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("matchers", JSONText, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


# -- status page: incidents, their updates, scheduled maintenance, check results (revision 0009) ---------
# An incident's `status` is its newest update's; `components` is a JSON list of component names.
incidents = sa.Table(
    "incidents", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("impact", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("components", JSONText, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("performer", sa.Text, nullable=False),
)

incident_updates = sa.Table(
    "incident_updates", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_id", sa.Integer,
              sa.ForeignKey("incidents.id", name="fk_incident_updates_incident", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("performer", sa.Text, nullable=False),
    sa.Index("ix_incident_updates_incident", "incident_id", "id"),
)

# `notified` is a JSON list of the notices already sent ("ahead", "start", "end"); `switched` whether the
# router's maintenance was turned on for it (and so must be turned off at its end).
maintenances = sa.Table(
    "maintenances", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("env", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float, nullable=False),
    sa.Column("switch", sa.Boolean, nullable=False),
    sa.Column("allow", JSONText, nullable=False),
    sa.Column("notified", JSONText, nullable=False),
    sa.Column("switched", sa.Boolean, nullable=False),
    sa.Column("cancelled_at", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("performer", sa.Text, nullable=False),
)

# Synthetic checks of the status page, one row per component and minute.
check_minutes = sa.Table(
    "check_minutes", metadata,
    sa.Column("component", sa.Text, primary_key=True),
    sa.Column("t", sa.BigInteger, primary_key=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("ok", sa.Integer, nullable=False),
)
