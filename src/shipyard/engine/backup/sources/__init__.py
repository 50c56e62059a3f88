"""Backup source kinds: postgres (pg_dump), sqlite (online backup API), files (tar stream)."""
