"""`migrator pull tokens`: list a Page's subscription tokens through the Graph API into the workspace.

One ingest call per Page, fed by a stream of listing pages (limit=1000, cursor paging): memory stays
flat and each Page is applied in one transaction, so an interrupted pull leaves nothing half-counted
and a re-run is a no-op for what was already pulled.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator

from migrator.errors import InputError
from migrator.graph.client import GraphClient
from migrator.inventory import IngestSummary, ingest_token_items


def load_page_token_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a page -> Page access token map: `page_id<TAB>token` lines.

    Each Page needs its own Page token (Meta's MM examples call Page edges with that Page's token). The
    file must be mode
    0600 (owner-only, like the workspace): anything wider is refused before it is read. Blank
    lines and `#` comments are skipped. Errors name the line, never the token.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise InputError(f"cannot read page token map: {exc.strerror}", path=str(p)) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError("page token map is not a regular file", path=str(p))
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise InputError(f"page token map is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                         "it holds access tokens", path=str(p), hint=f"chmod 600 {p}")
    try:
        text = p.read_text("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("page token map is not UTF-8 text", path=str(p)) from None
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = raw.strip("\r\n").split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise InputError(f"line {n}: expected page_id<TAB>token", path=str(p),
                             hint="one Page per line: its id, a tab, its Page access token")
        page_id, token = parts[0].strip(), parts[1].strip()
        if not page_id.isdigit():
            raise InputError(f"line {n}: page id must be digits", path=str(p))
        if any(c.isspace() for c in token):
            raise InputError(f"line {n}: the token contains whitespace", path=str(p))
        if page_id in out and out[page_id] != token:
            raise InputError(f"line {n}: page {page_id} appears twice with different tokens", path=str(p))
        out[page_id] = token
    if not out:
        raise InputError("page token map has no page_id<TAB>token line", path=str(p))
    return out


def pull_tokens(ws, client: GraphClient | Callable[[str], GraphClient], page_ids: Iterable[str], *,
                limit: int = 1000, progress: Callable[[int], None] | None = None,
                **filters) -> IngestSummary:
    """Pull every token of each Page and ingest it; returns the per-Page counts.

    `client` is one client for every Page, or a function giving the client (with that Page's
    own token) for a page id. `filters` go to the listing as query parameters (e.g.
    do_not_return_duplicates=True).
    """
    summary = IngestSummary()
    for page_id in page_ids:
        page_id = str(page_id).strip()
        if not isinstance(client, GraphClient):
            with client(page_id) as own:
                summary.files.append(_pull_page(ws, own, page_id, limit, progress, filters))
            continue
        summary.files.append(_pull_page(ws, client, page_id, limit, progress, filters))
    return summary


def _pull_page(ws, client: GraphClient, page_id: str, limit: int, progress, filters):
    def items() -> Iterator[dict]:
        for page in client.list_tokens(page_id, limit=limit, **filters):
            if progress:
                progress(len(page.items))
            yield from page.items

    label = f"pull:{client.base_url}/{client.version}/{page_id}/notification_message_tokens"
    return ingest_token_items(ws, items(), page_id=page_id, origin="pull", path=label)
