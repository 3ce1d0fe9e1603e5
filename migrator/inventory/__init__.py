"""Inventory: ingest of a partner's RN estate (tokens, pages, content) into the workspace.

Public functions (the CLI and `pull tokens` call these):
- `ingest_tokens(ws, paths, fmt="auto", strict=False)`: CSV, token-listing JSONL, webhooks
- `ingest_token_items(ws, items, page_id=..., origin="pull")`: listing items from the API
- `ingest_pages(ws, paths)`, `ingest_content(ws, paths)`
"""

from migrator.inventory.content import ingest_content
from migrator.inventory.ingest import ingest_token_items, ingest_tokens
from migrator.inventory.pages import ingest_pages
from migrator.inventory.summary import FileSummary, IngestSummary

__all__ = ["FileSummary", "IngestSummary", "ingest_content", "ingest_pages", "ingest_token_items",
           "ingest_tokens"]
