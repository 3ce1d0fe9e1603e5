"""Inventory: ingest of a partner's RN estate (tokens, pages, content) into the workspace."""
