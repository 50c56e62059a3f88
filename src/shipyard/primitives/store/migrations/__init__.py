"""Alembic migrations of the state database (run by ``shipyard.primitives.store.migrate``)."""
