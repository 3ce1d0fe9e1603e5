"""The emulator's durable memory: campaigns, accepted sends, cadence and ids in one SQLite file.

Meta does not forget: a SIGKILLed emulator restarted on the same file keeps every campaign, every
accepted send (with its tracking id) and every token's last send, so a rehearsal can kill and
restart it mid-run. Each accepted send is committed before its answer is written (WAL,
synchronous=OFF: a killed process loses nothing, no fsync per send; only a power cut may lose commits),
so whatever the executor was told "sent" the emulator remembers.

Compact by design (a later rehearsal has 10M subscribers under 1 GB): sends live only in
SQLite, one row each (a campaign's spend and a token's last send are derived from them, so an
accepted send is one INSERT), messages are stored once per distinct body, and Python sees them
through the small `SendLog` / `LastSent` views; only the few campaigns are cached as objects.
Tracking ids are derived from the send's sequence number (unique across restarts, still
seeded); webhook lines not yet written when the process died are written again at the next start.
Without a path the same schema lives in memory (in-process tests).
"""

from __future__ import annotations

import os
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
    body BLOB NOT NULL                 -- the Campaign as created (spend and counts come from sends)
);                                     -- rowid: creation order
CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS sends (
    seq INTEGER PRIMARY KEY,           -- acceptance order; its tracking id is derived from it
    time REAL NOT NULL,
    token TEXT NOT NULL,
    message_id TEXT NOT NULL,          -- the campaign
    tracking_id TEXT NOT NULL,
    page_id TEXT NOT NULL,
    ad_account_id TEXT NOT NULL,
    message INTEGER NOT NULL REFERENCES messages(id),
    cost INTEGER NOT NULL DEFAULT 0,   -- charged to the campaign (its spend is the sum)
    day INTEGER NOT NULL DEFAULT 0     -- the ad account's budget day it was charged to
);
CREATE INDEX IF NOT EXISTS sends_token ON sends(token, time);   -- the cadence check
-- last-send times set by hand (tests, snapshots); the cadence takes the later of both
CREATE TABLE IF NOT EXISTS last_sent (token TEXT PRIMARY KEY, time REAL NOT NULL) WITHOUT ROWID;
"""


class EmulatorStore:
    """One SQLite connection (file or memory) shared by the emulator's single event loop."""

    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # the sends table holds raw subscription tokens, like the webhooks file: 0600
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            if os.stat(path).st_mode & 0o077:
                os.chmod(path, 0o600)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.lock = threading.RLock()   # the sync in-process transport calls from its own thread
        try:
            if path:
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=OFF")   # a killed process loses nothing; a power cut may
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            from migrator.errors import InputError

            raise InputError(f"cannot use it as the emulator's state store: {exc}", path=self.path,
                             hint="pass --state with a new path or one an earlier `emulator serve` "
                                  "wrote") from None
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
        """Campaigns as created, with spend, spend per day and send count summed from the sends."""
        out = {}
        for (b,) in self.conn.execute("SELECT body FROM campaigns ORDER BY rowid"):
            d = orjson.loads(b)
            d.update(spent=0, spent_by_day={}, sends=0)
            out[d["id"]] = d
        for mid, day, cost, n in self.conn.execute(
                "SELECT message_id, day, SUM(cost), COUNT(*) FROM sends GROUP BY message_id, day"):
            d = out.get(mid)
            if d is not None:
                d["spent"] += cost
                d["spent_by_day"][day] = cost
                d["sends"] += n
        return list(out.values())

    def last_seq(self) -> int:
        return max(self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM sends").fetchone()[0], self.meta("tracking"))

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

    def accept(self, send, cost: int, day: int) -> None:
        """Record one accepted send (`send.seq` set by the caller): one row, one commit.

        Everything else a send changes is derived from this row (the campaign's spend, the token's
        last send), so a commit writes little: the row and its token index entry."""
        with self.lock:
            ref = self.message_ref(send.message)
            self.conn.execute(
                "INSERT INTO sends (seq, time, token, message_id, tracking_id, page_id, ad_account_id, message, cost, "
                "day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (send.seq, send.time, send.token, send.message_id, send.tracking_id, send.page_id,
                 send.ad_account_id, ref, cost, day))
            self.count += 1

    def iter_sends(self, after: int = 0, *, offset: int = 0, limit: int | None = None) -> Iterator[tuple]:
        sql = ("SELECT seq, time, token, message_id, tracking_id, page_id, ad_account_id, message FROM sends "
               "WHERE seq > ? ORDER BY seq LIMIT ? OFFSET ?")
        with self.lock:
            rows = self.conn.execute(sql, (after, -1 if limit is None else limit, offset)).fetchall()
        yield from rows

    def clear(self) -> None:
        """Forget campaigns and sends (POST /_emulator/reset); ids and tracking ids still never repeat."""
        with self.lock:
            self.set_meta("tracking", self.last_seq())
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
            row = self.store.conn.execute(
                "SELECT MAX(t) FROM (SELECT MAX(time) AS t FROM sends WHERE token = ? "
                "UNION ALL SELECT time FROM last_sent WHERE token = ?)", (token, token)).fetchone()
        return row[0] if row and row[0] is not None else default

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
            return self.store.conn.execute(
                "SELECT token, MAX(t) FROM (SELECT token, MAX(time) AS t FROM sends GROUP BY token "
                "UNION ALL SELECT token, time FROM last_sent) GROUP BY token ORDER BY token").fetchall()

    def __len__(self) -> int:
        return len(self.items())

    def clear(self) -> None:
        """Forget last-send times set by hand (those of accepted sends stay: they are the sends)."""
        with self.store.lock:
            self.store.conn.execute("DELETE FROM last_sent")
