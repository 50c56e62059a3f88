"""Alembic environment: runs on the connection (and inside the transaction) given by migrate.py."""

from __future__ import annotations

from alembic import context

from shipyard.primitives.store.migrate import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run shipyard's migrations through shipyard.primitives.store.migrate.upgrade_to_head")

# render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds the table instead.
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
