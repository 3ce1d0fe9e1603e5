"""Change detectors for the plan's inputs: SHA-256 over JSON values or over query rows.

Each concern fingerprints its own tables with these (`migrator.inventory.fingerprint`,
`migrator.audit.fingerprint`); `migrator.plan.fingerprint` combines the results.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any


def sha(*chunks: Any) -> str:
    """SHA-256 of the values as canonical JSON, one line each."""
    h = hashlib.sha256()
    for c in chunks:
        h.update(json.dumps(c, sort_keys=True, separators=(",", ":"), default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def rows_sha(conn: sqlite3.Connection, sql: str) -> str:
    """SHA-256 of every row `sql` returns, in its order (streamed, flat memory)."""
    h = hashlib.sha256()
    cur = conn.execute(sql)
    while True:
        rows = cur.fetchmany(5000)
        if not rows:
            break
        for r in rows:
            h.update(repr(tuple(r)).encode())
    return h.hexdigest()
