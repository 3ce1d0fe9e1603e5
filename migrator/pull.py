"""`migrator pull tokens`: list a Page's subscription tokens through the Graph API into the workspace.

One ingest call per Page, fed by a stream of listing pages (limit=1000, cursor paging): memory stays
flat and each Page is applied in one transaction, so an interrupted pull leaves nothing half-counted
and a re-run is a no-op for what was already pulled.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from migrator.graph.client import GraphClient
from migrator.inventory import IngestSummary, ingest_token_items


def pull_tokens(ws, client: GraphClient, page_ids: Iterable[str], *, limit: int = 1000,
                progress: Callable[[int], None] | None = None, **filters) -> IngestSummary:
    """Pull every token of each Page and ingest it; returns the per-Page counts.

    `filters` go to the listing as query parameters (e.g. do_not_return_duplicates=True).
    """
    summary = IngestSummary()
    for page_id in page_ids:
        page_id = str(page_id).strip()

        def items() -> Iterator[dict]:
            for page in client.list_tokens(page_id, limit=limit, **filters):
                if progress:
                    progress(len(page.items))
                yield from page.items

        label = f"pull:{client.base_url}/{client.version}/{page_id}/notification_message_tokens"
        result = ingest_token_items(ws, items(), page_id=page_id, origin="pull", path=label)
        summary.files.append(result)
    return summary
