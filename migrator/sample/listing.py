"""Token-listing dump for the sample, as `GET /<PAGE_ID>/notification_message_tokens` returns it.

Half the pages are dumped as whole response pages (`{"data": [...], "paging": ...}` plus a
top-level page_id), the other half as bare items carrying their page_id. One line is a
truncated copy of the line before it (malformed). Buffers at most one response page per page.
"""

from __future__ import annotations

import base64
from typing import IO

from migrator.sample.webhooks import OneMalformedLine, dumpl

GRAPH = "https://graph.facebook.com/v23.0"
MALFORMED_AT_LINE = 3


def _cursor(page_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{page_id}:{offset}".encode()).decode().rstrip("=")


class ListingWriter(OneMalformedLine):
    MALFORMED_AT = MALFORMED_AT_LINE

    def __init__(self, f: IO[bytes], page_limits: dict[str, int | None]):
        """`page_limits`: page_id -> response page size, or None to dump bare items."""
        super().__init__(f)
        self.limits = page_limits
        self._buf: dict[str, list[dict]] = {p: [] for p, lim in page_limits.items() if lim}
        self._offset: dict[str, int] = {p: 0 for p in page_limits}
        self.items = 0
        self.page_lines = 0
        self.item_lines = 0

    def add(self, page_id: str, item: dict) -> None:
        self.items += 1
        limit = self.limits[page_id]
        if not limit:
            self.item_lines += 1
            self._write(dumpl({**item, "page_id": page_id}))
            return
        buf = self._buf[page_id]
        buf.append(item)
        if len(buf) >= limit:
            self._flush(page_id, last=False)

    def _flush(self, page_id: str, *, last: bool) -> None:
        buf = self._buf[page_id]
        if not buf:
            return
        start = self._offset[page_id]
        end = start + len(buf)
        limit = self.limits[page_id]
        paging: dict = {"cursors": {"before": _cursor(page_id, start), "after": _cursor(page_id, end)}}
        if not last:
            paging["next"] = (f"{GRAPH}/{page_id}/notification_message_tokens?limit={limit}"
                              f"&after={_cursor(page_id, end)}")
        self._write(dumpl({"data": buf, "paging": paging, "page_id": page_id}))
        self.page_lines += 1
        self._offset[page_id] = end
        self._buf[page_id] = []

    def finish(self) -> None:
        for page_id in self._buf:
            self._flush(page_id, last=True)
        self._malformed_if_missing()
