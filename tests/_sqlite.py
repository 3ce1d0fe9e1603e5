"""Which tables a call reads, as SQLite's authorizer sees every statement it runs."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable


def tables_read(conn: sqlite3.Connection, call: Callable[[], Any]) -> tuple[Any, set[str]]:
    """(what `call()` returned, the tables its statements read on `conn`)."""
    read: set[str] = set()

    def watch(action, arg1, arg2, db, source):
        if action == sqlite3.SQLITE_READ:
            read.add(arg1)
        return sqlite3.SQLITE_OK

    conn.set_authorizer(watch)
    try:
        return call(), read
    finally:
        conn.set_authorizer(None)
