"""Inventory: ingest of a partner's RN estate (tokens, pages, content) into the workspace.

Public functions (the CLI and `pull tokens` call these):
- `ingest_tokens(ws, paths, fmt="auto", strict=False)`: CSV, token-listing JSONL, webhooks
- `ingest_token_items(ws, items, page_id=..., origin="pull")`: listing items from the API
- `ingest_pages(ws, paths)`, `ingest_content(ws, paths)`
- `pull_tokens(ws, client, page_ids)`: the Graph token listing of each Page (`migrator pull tokens`)
- `fingerprint(ws)`, `content_fingerprint(ws)`: digests of the inventory's tables (a saved
  plan records them; a change makes it stale)
- `convert_workspace_contents(ws, policy=None, force=False)`: store the MM conversion of
  every `contents` row (ingest content does this itself)

They are imported on first use (PEP 562), so that an ingest worker process, which needs
only the parsers, does not load the workspace, converter and pydantic models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "content_fingerprint": "migrator.inventory.fingerprints",
    "fingerprint": "migrator.inventory.fingerprints",
    "convert_workspace_contents": "migrator.inventory.conversions",
    "ingest_content": "migrator.inventory.content",
    "ingest_token_items": "migrator.inventory.ingest",
    "ingest_tokens": "migrator.inventory.ingest",
    "ingest_pages": "migrator.inventory.pages",
    "pull_tokens": "migrator.inventory.pull",
    "FileSummary": "migrator.inventory.summary",
    "IngestSummary": "migrator.inventory.summary",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from migrator.inventory.content import ingest_content
    from migrator.inventory.conversions import convert_workspace_contents
    from migrator.inventory.fingerprints import content_fingerprint, fingerprint
    from migrator.inventory.ingest import ingest_token_items, ingest_tokens
    from migrator.inventory.pages import ingest_pages
    from migrator.inventory.pull import pull_tokens
    from migrator.inventory.summary import FileSummary, IngestSummary


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
