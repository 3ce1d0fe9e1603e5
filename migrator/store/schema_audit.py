"""Workspace tables for the audit concern (registered on MIGRATIONS in schema.py's order)."""

from migrator.store.schema import MIGRATIONS  # noqa: F401
