"""The emulator's durable memory: campaigns, accepted sends, cadence and ids in one SQLite file.

Meta does not forget: a SIGKILLed emulator restarted on the same file keeps every campaign, every
accepted send (with its tracking id) and every token's last send, so a rehearsal can kill and
restart it mid-run. Each accepted send is committed before its answer is written (WAL,
synchronous=NORMAL: a killed process loses nothing; only a power cut may lose the last commits),
so whatever the executor was told "sent" the emulator remembers.

Compact by design (a later rehearsal has 10M subscribers under 1 GB): sends and last-send
times live only in SQLite, messages are stored once per distinct body, and Python sees them
through the small `SendLog` / `LastSent` views; only the few campaigns are cached as objects.
Tracking ids come from a durable counter (unique across restarts, still seeded); webhook lines
not yet written when the process died are written again at the next start (`unhooked`).
Without a path the same schema lives in memory (in-process tests).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    body BLOB NOT NULL                 -- the Campaign as JSON (budgets, spend, counters)
);                                     -- rowid: creation order
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS sends (
    seq INTEGER PRIMARY KEY,           -- acceptance order (1, 2, ...)
    time REAL NOT NULL,
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,
    tracking_id TEXT NOT NULL UNIQUE,
    page_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages(id)
);
CREATE TABLE IF NOT EXISTS last_sent (token TEXT PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
"""


class EmulatorStore:
    """One SQLite connection (file or memory) shared by the emulator's single event loop."""

    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.lock = threading.RLock()   # the sync in-process transport calls from its own thread
        if path:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self._messages: dict[bytes, int] = {}
        self._bodies: dict[int, dict] = {}
        self.count = self.conn.execute("SELECT COUNT(*) FROM sends").fetchone()[0]

    @property
    def durable(self) -> bool:
        return self.path != ":memory:"

    # ------------------------------------------------------------------ counters
    def meta(self, key: str, default: int = 0) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def set_meta(self, key: str, value: int) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                              "SET value = excluded.value", (key, int(value)))

    def next_counter(self, key: str) -> int:
        """The next value of a durable counter (committed at once)."""
        with self.lock:
            return self.conn.execute("INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE "
                                     "SET value = value + 1 RETURNING value", (key,)).fetchone()[0]

    # ------------------------------------------------------------------ campaigns
    def load_campaigns(self) -> list[dict]:
        return [orjson.loads(b) for (b,) in self.conn.execute("SELECT body FROM campaigns ORDER BY rowid")]

    def save_campaign(self, c) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO campaigns (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE "
                              "SET body = excluded.body", (c.id, _campaign_json(c)))

    def delete_campaign(self, cid: str) -> None:
        with self.lock:
            self.conn.execute("DELETE FROM campaigns WHERE id = ?", (cid,))

    # ------------------------------------------------------------------ sends
    def message_ref(self, message: dict) -> int:
        key = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
        ref = self._messages.get(key)
        if ref is None:
            self.conn.execute("INSERT OR IGNORE INTO messages (body) VALUES (?)", (key,))
            ref = self.conn.execute("SELECT id FROM messages WHERE body = ?", (key,)).fetchone()[0]
            self._messages[key] = ref
            self._bodies[ref] = message
        return ref

    def message(self, ref: int) -> dict:
        body = self._bodies.get(ref)
        if body is None:
            body = orjson.loads(self.conn.execute("SELECT body FROM messages WHERE id = ?", (ref,)).fetchone()[0])
            self._bodies[ref] = body
        return body

    def accept(self, send, campaign, tracking_counter: int) -> int:
        """Record one accepted send, its token's last send and the campaign's spend: one commit."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                seq = self.conn.execute(
                    "INSERT INTO sends (time, token, message_id, tracking_id, page_id, ad_account_id, message) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                    (send.time, send.token, send.message_id, send.tracking_id, send.page_id, send.ad_account_id,
                     self.message_ref(send.message))).fetchone()[0]
                self.conn.execute("INSERT INTO last_sent (token, time) VALUES (?, ?) ON CONFLICT (token) DO UPDATE "
                                  "SET time = excluded.time", (send.token, send.time))
                self.conn.execute("UPDATE campaigns SET body = ? WHERE id = ?", (_campaign_json(campaign), campaign.id))
                self.conn.execute("INSERT INTO meta (key, value) VALUES ('tracking', ?) ON CONFLICT (key) "
                                  "DO UPDATE SET value = MAX(value, excluded.value)", (tracking_counter,))
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
            self.count += 1
            return seq

    def iter_sends(self, after: int = 0, *, offset: int = 0, limit: int | None = None) -> Iterator[tuple]:
        sql = ("SELECT seq, time, token, message_id, tracking_id, page_id, ad_account_id, message FROM sends "
               "WHERE seq > ? ORDER BY seq LIMIT ? OFFSET ?")
        with self.lock:
            rows = self.conn.execute(sql, (after, -1 if limit is None else limit, offset)).fetchall()
        yield from rows

    def clear(self) -> None:
        with self.lock:
            self.conn.executescript("BEGIN; DELETE FROM campaigns; DELETE FROM sends; DELETE FROM last_sent; "
                                    "DELETE FROM meta WHERE key NOT IN ('tracking', 'next_id'); COMMIT;")
            self.count = 0

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _campaign_json(c) -> bytes:
    return orjson.dumps(asdict(c), option=orjson.OPT_NON_STR_KEYS)


class SendLog:
    """The accepted sends in acceptance order, read from the store (a list-like view)."""

    def __init__(self, store: EmulatorStore, make_send):
        self.store = store
        self._make = make_send

    def __len__(self) -> int:
        return self.store.count

    def __iter__(self):
        for row in self.store.iter_sends():
            yield self._send(row)

    def _send(self, row) -> Any:
        seq, time, token, message_id, tracking_id, page_id, ad_account_id, ref = row
        return self._make(time, token, message_id, tracking_id, page_id, ad_account_id, self.store.message(ref), seq)

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            rows = [self._send(r) for r in self.store.iter_sends(offset=start, limit=max(0, stop - start))]
            return rows[::step] if step != 1 else rows
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._send(next(self.store.iter_sends(offset=i, limit=1)))

    def after(self, seq: int):
        for row in self.store.iter_sends(after=seq):
            yield self._send(row)

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, SendLog)) else NotImplemented

    def __repr__(self) -> str:
        return f"<SendLog of {len(self)} sends in {self.store.path}>"


class LastSent:
    """token -> time of its last accepted send (the cadence check), read from the store."""

    def __init__(self, store: EmulatorStore):
        self.store = store

    def get(self, token: str, default=None):
        with self.store.lock:
            row = self.store.conn.execute("SELECT time FROM last_sent WHERE token = ?", (token,)).fetchone()
        return row[0] if row else default

    def __getitem__(self, token: str) -> float:
        t = self.get(token)
        if t is None:
            raise KeyError(token)
        return t

    def __contains__(self, token: str) -> bool:
        return self.get(token) is not None

    def __setitem__(self, token: str, time: float) -> None:
        with self.store.lock:
            self.store.conn.execute("INSERT INTO last_sent (token, time) VALUES (?, ?) ON CONFLICT (token) "
                                    "DO UPDATE SET time = excluded.time", (token, float(time)))

    def items(self):
        with self.store.lock:
            return self.store.conn.execute("SELECT token, time FROM last_sent ORDER BY token").fetchall()

    def __len__(self) -> int:
        with self.store.lock:
            return self.store.conn.execute("SELECT COUNT(*) FROM last_sent").fetchone()[0]

    def clear(self) -> None:
        with self.store.lock:
            self.store.conn.execute("DELETE FROM last_sent")
