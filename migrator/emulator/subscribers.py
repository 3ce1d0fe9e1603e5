"""Who the emulator can deliver to: subscribers from a workspace or a JSONL file.

JSONL: one `{"token", "page_id", "region", "opted_out"}` per line (+ optional psid, timezone,
topic_title), as `migrator sample` writes `subscribers.jsonl`. Workspace: table `tokens`
(region = tokens.country; opted out = status 'stopped' or Meta said so: mm_feedback.state 'opted_out').
Bad lines are skipped and counted, never fatal.

The emulator keeps them in a `SubscriberStore`: a private SQLite file (deleted when closed), not
Python objects, so a 10M rehearsal fits in well under 1 GB (6 GB as objects) and a workspace
loads with one INSERT ... SELECT instead of 10M objects.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import threading
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from migrator.errors import InputError


@dataclass(slots=True)
class Subscriber:
    token: str
    page_id: str
    region: str | None = None          # ISO alpha-2; None = unknown (treated as deliverable)
    opted_out: bool = False
    psid: str | None = None
    timezone: str | None = None
    topic_title: str | None = None
    created_at: int | None = None      # epoch seconds
    expired: bool = False
    wrong_region: bool = False         # learned earlier (mm_feedback.state='wrong_region')
    seq: int = 0                       # listing order
    token_expiry: int | None = None    # token_expiry_timestamp as the listing shows it (ms)
    last_organic_at: float | None = None  # last organic Page<->user thread activity (epoch s)


@dataclass
class LoadResult:
    subscribers: list[Subscriber] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _bool(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y")
    return bool(v)


def subscriber_from_dict(d: dict) -> Subscriber:
    """One subscriber from a JSONL object; raises ValueError naming what is wrong."""
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    token = d.get("token")
    page_id = d.get("page_id")
    if not isinstance(token, str) or not token.strip():
        raise ValueError("missing token")
    if page_id is None or str(page_id).strip() == "":
        raise ValueError("missing page_id")
    region = d.get("region")
    region = str(region).strip().upper() if region else None
    if region == "UK":
        region = "GB"
    created = d.get("created_at")
    expiry, organic = d.get("token_expiry"), d.get("last_organic_at")
    return Subscriber(token=token.strip(), page_id=str(page_id).strip(), region=region,
                      opted_out=_bool(d.get("opted_out", False)),
                      psid=str(d["psid"]) if d.get("psid") is not None else None,
                      timezone=d.get("timezone"), topic_title=d.get("topic_title"),
                      created_at=int(created) if isinstance(created, (int, float)) else None,
                      token_expiry=int(expiry) if isinstance(expiry, (int, float)) else None,
                      last_organic_at=float(organic) if isinstance(organic, (int, float)) else None)


def load_subscribers_jsonl(path: str | Path) -> LoadResult:
    """Read a subscribers JSONL file (gzip detected); bad lines are returned in `rejected`."""
    p = Path(path)
    try:
        raw = p.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read subscribers: {exc.strerror}", path=str(p),
                         hint="give the subscribers.jsonl written by `migrator sample`") from None
    out = LoadResult()
    with raw:
        head = raw.read(2)
        raw.seek(0)
        fh = gzip.open(raw) if head == b"\x1f\x8b" else raw
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    out.subscribers.append(subscriber_from_dict(json.loads(line)))
                except (ValueError, TypeError) as exc:
                    out.rejected.append((n, str(exc)))
        except (OSError, EOFError) as exc:
            raise InputError(f"unreadable subscribers file: {exc}", path=str(p)) from None
    return out


_WS_FROM = ("FROM {s}tokens t LEFT JOIN {s}mm_feedback f ON f.token_id = t.id "
            "WHERE (f.state IS NULL OR f.state != 'invalid')")


class WorkspaceSubscribers:
    """The workspace's subscribers, read when iterated (never all in memory at once).

    `SubscriberStore.add` copies them with one INSERT ... SELECT when it is given this object.
    """

    def __init__(self, ws):
        self.ws = ws
        self._n: int | None = None

    def __len__(self) -> int:
        if self._n is None:
            self._n = self.ws.conn.execute("SELECT COUNT(*) " + _WS_FROM.format(s="") +
                                           " AND t.page_id IS NOT NULL AND t.page_id != ''").fetchone()[0]
        return self._n

    def __iter__(self) -> Iterator[Subscriber]:
        sql = ("SELECT t.token, t.page_id, t.psid, t.timezone, t.topic_title, t.country, t.status, f.state, "
               "t.created_at " + _WS_FROM.format(s="") + " ORDER BY t.id")
        for token, page_id, psid, tz, topic, country, status, mm_state, created in self.ws.conn.execute(sql):
            if not page_id:
                continue
            yield Subscriber(
                token=token, page_id=str(page_id), region=(country or None), psid=psid, timezone=tz,
                topic_title=topic, opted_out=(status == "stopped" or mm_state == "opted_out"),
                created_at=created, expired=(mm_state == "expired"), wrong_region=(mm_state == "wrong_region"))


def load_subscribers_workspace(ws) -> LoadResult:
    """Every token in the workspace except those MM already called invalid (read lazily)."""
    out = LoadResult(subscribers=WorkspaceSubscribers(ws))  # type: ignore[arg-type]
    bad = ws.conn.execute("SELECT COUNT(*) " + _WS_FROM.format(s="") +
                          " AND (t.page_id IS NULL OR t.page_id = '')").fetchone()[0]
    out.rejected.extend((0, "token without page_id skipped") for _ in range(bad))
    return out


# ---------------------------------------------------------------------------- the compact store
_STORE_SCHEMA = """
CREATE TABLE subs (
    seq INTEGER PRIMARY KEY,            -- listing order (a replaced subscriber keeps its place)
    token TEXT NOT NULL, page_id TEXT NOT NULL, region TEXT, opted_out INTEGER NOT NULL DEFAULT 0,
    psid TEXT, timezone TEXT, topic_title TEXT, created_at INTEGER, expired INTEGER NOT NULL DEFAULT 0,
    wrong_region INTEGER NOT NULL DEFAULT 0, token_expiry INTEGER, last_organic_at REAL,
    list_page TEXT                      -- the Page whose listing shows it (NULL: opted out when added)
);
"""
_STORE_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS subs_token ON subs(token);
CREATE INDEX IF NOT EXISTS subs_listing ON subs(list_page, seq) WHERE list_page IS NOT NULL;
"""


class SubscriberStore(MutableMapping):
    """token -> Subscriber, kept in a private temporary SQLite file (SQLite deletes it on close).

    Behaves as the dict it replaces. An object handed out by `store[token]` (or `setdefault`) is
    kept "live": later reads return that same object, so a change made to it (a test marking a
    subscriber opted out) is what the emulator sees; `add` writes live objects back before it
    recomputes the listing, as the dict's listing was rebuilt from the objects. `get` (the send
    path) builds a fresh object per call and keeps nothing, so memory stays flat.

    The listing (`.listing`): per Page, the subscribers not opted out when they were added, in
    the order they were first added.
    """

    def __init__(self) -> None:
        # "": a private on-disk temporary database, deleted when the connection closes
        self.conn = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.executescript(_STORE_SCHEMA)
        self.lock = threading.RLock()   # the in-process sync transport calls from its own thread
        self._live: dict[str, Subscriber] = {}
        self._indexed = False
        self._n = 0
        self.listing = Listing(self)

    # ---------------------------------------------------------------- rows <-> objects
    def _obj(self, row) -> Subscriber:
        live = self._live.get(row[1])
        if live is not None:
            return live
        seq, token, page_id, region, opted, psid, tz, topic, created, expired, wrong, expiry, organic = row[:13]
        return Subscriber(token=token, page_id=page_id, region=region, opted_out=bool(opted), psid=psid,
                          timezone=tz, topic_title=topic, created_at=created, expired=bool(expired),
                          wrong_region=bool(wrong), seq=seq, token_expiry=expiry, last_organic_at=organic)

    _SELECT = ("SELECT seq, token, page_id, region, opted_out, psid, timezone, topic_title, created_at, expired, "
               "wrong_region, token_expiry, last_organic_at FROM subs")

    def _index(self) -> None:
        """The two indexes, built once after the first (bulk) load: sorting once beats 10M inserts into them."""
        if not self._indexed:
            with self.lock:
                if not self._indexed:
                    self.conn.executescript(_STORE_INDEXES)
                    self._indexed = True

    def _row(self, token: str):
        self._index()
        with self.lock:
            return self.conn.execute(self._SELECT + " WHERE token = ?", (token,)).fetchone()

    @staticmethod
    def _values(s: Subscriber) -> tuple:
        return (s.token, str(s.page_id), s.region, int(bool(s.opted_out)), s.psid, s.timezone, s.topic_title,
                s.created_at, int(bool(s.expired)), int(bool(s.wrong_region)), s.token_expiry,
                s.last_organic_at)

    _UPSERT = ("INSERT INTO subs (token, page_id, region, opted_out, psid, timezone, topic_title, created_at, "
               "expired, wrong_region, token_expiry, last_organic_at, list_page) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN NULL ELSE ? END) "
               "ON CONFLICT (token) DO UPDATE SET page_id = excluded.page_id, region = excluded.region, "
               "opted_out = excluded.opted_out, psid = excluded.psid, timezone = excluded.timezone, "
               "topic_title = excluded.topic_title, created_at = excluded.created_at, expired = excluded.expired, "
               "wrong_region = excluded.wrong_region, token_expiry = excluded.token_expiry, "
               "last_organic_at = excluded.last_organic_at{listed}")

    def _write(self, subs: Iterable[Subscriber], *, relist: bool) -> int:
        self._index()
        sql = self._UPSERT.format(listed=", list_page = excluded.list_page" if relist else "")
        n = 0
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                batch = []
                live = self._live
                for s in subs:
                    if live and live.get(s.token, s) is not s:
                        live[s.token] = s        # replaced: the new object is the one seen, as in a dict
                    v = self._values(s)
                    batch.append((*v, v[3], v[1]))
                    n += 1
                    if len(batch) >= 10_000:
                        self.conn.executemany(sql, batch)
                        batch.clear()
                if batch:
                    self.conn.executemany(sql, batch)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self._n = self.conn.execute("SELECT COUNT(*) FROM subs").fetchone()[0]
        return n

    def flush_live(self, *, relist: bool = False) -> None:
        """Write the live objects' current fields back to their rows."""
        live = [s for t, s in self._live.items() if t in self]
        if live:
            self._write(live, relist=relist)

    # ---------------------------------------------------------------- adding
    def add(self, subs: Iterable[Subscriber]) -> int:
        """Add or replace subscribers (a replaced one keeps its listing place); returns how many."""
        if isinstance(subs, WorkspaceSubscribers) and self._n == 0 and getattr(subs.ws, "path", None):
            return self._copy_workspace(subs)
        self.flush_live(relist=True)
        n = self._write(subs, relist=True)
        with self.lock:     # set each object's place, as the dict did
            for s in (subs if isinstance(subs, list) else ()):
                r = self.conn.execute("SELECT seq FROM subs WHERE token = ?", (s.token,)).fetchone()
                if r:
                    s.seq = r[0]
        return n

    def _copy_workspace(self, subs: WorkspaceSubscribers) -> int:
        """One INSERT ... SELECT from the workspace file (read-only), then the indexes."""
        with self.lock:
            # attached by path, only read: the copy is one statement, a snapshot of the workspace
            self.conn.execute("ATTACH DATABASE ? AS ws", (str(subs.ws.path),))
            try:
                self.conn.execute("PRAGMA cache_size = -65536")    # 64 MB while the indexes are sorted
                self.conn.execute("BEGIN")
                self.conn.execute(
                    "INSERT INTO subs (token, page_id, region, opted_out, psid, timezone, topic_title, created_at, "
                    "expired, wrong_region, list_page) "
                    "SELECT t.token, t.page_id, NULLIF(t.country, ''), "
                    "(t.status IS 'stopped' OR f.state IS 'opted_out'), t.psid, t.timezone, t.topic_title, "
                    "t.created_at, f.state IS 'expired', f.state IS 'wrong_region', "
                    "CASE WHEN t.status IS 'stopped' OR f.state IS 'opted_out' THEN NULL ELSE t.page_id END "
                    + _WS_FROM.format(s="ws.") + " AND t.page_id IS NOT NULL AND t.page_id != '' ORDER BY t.id")
                self.conn.execute("COMMIT")
            finally:
                self.conn.execute("DETACH DATABASE ws")
            self._index()
            self.conn.execute("PRAGMA cache_size = -2000")
            self._n = self.conn.execute("SELECT COUNT(*) FROM subs").fetchone()[0]
        return self._n

    # ---------------------------------------------------------------- the mapping
    def get(self, token, default=None):
        live = self._live.get(token)
        if live is not None:
            return live
        row = self._row(token)
        return self._obj(row) if row is not None else default

    def __getitem__(self, token: str) -> Subscriber:
        live = self._live.get(token)
        if live is not None:
            return live
        row = self._row(token)
        if row is None:
            raise KeyError(token)
        s = self._live[token] = self._obj(row)
        return s

    def __setitem__(self, token: str, s: Subscriber) -> None:
        if s.token != token:
            s.token = token
        self._write([s], relist=True)
        s.seq = self._row(token)[0]
        self._live[token] = s

    def __delitem__(self, token: str) -> None:
        self._index()
        with self.lock:
            cur = self.conn.execute("DELETE FROM subs WHERE token = ?", (token,))
            self._n -= cur.rowcount
        self._live.pop(token, None)
        if not cur.rowcount:
            raise KeyError(token)

    def __contains__(self, token) -> bool:
        return token in self._live or (isinstance(token, str) and self._row(token) is not None)

    def __iter__(self) -> Iterator[str]:
        last = -1
        while True:
            with self.lock:
                rows = self.conn.execute("SELECT seq, token FROM subs WHERE seq > ? ORDER BY seq LIMIT 1000",
                                         (last,)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield from (t for _, t in rows)

    def __len__(self) -> int:
        return self._n

    def audience(self, page_id: str, excluded_regions) -> int:
        """Listed subscribers of a Page that MM can deliver to (not wrong region, not expired)."""
        self.flush_live()
        ex = sorted(excluded_regions or ())
        self._index()
        with self.lock:
            return self.conn.execute(
                "SELECT COUNT(*) FROM subs WHERE list_page = ? AND NOT wrong_region AND NOT expired"
                + (f" AND (region IS NULL OR region = '' OR region NOT IN ({','.join('?' * len(ex))}))" if ex else ""),
                (page_id, *ex)).fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class Listing:
    """page_id -> the Page's listed subscribers (a `PageListing`), as the dict of lists it replaces."""

    def __init__(self, store: SubscriberStore):
        self.store = store

    def __contains__(self, page_id) -> bool:
        st = self.store
        st._index()
        with st.lock:
            return st.conn.execute("SELECT 1 FROM subs WHERE list_page = ? LIMIT 1", (str(page_id),)).fetchone() \
                is not None

    def get(self, page_id, default=None):
        return PageListing(self.store, str(page_id)) if page_id in self else default


class PageListing:
    """One Page's listed subscribers in order: iterate, len(), or slice (read from the store)."""

    def __init__(self, store: SubscriberStore, page_id: str):
        self.store, self.page_id = store, page_id

    def _rows(self, after: int, limit: int, offset: int = 0):
        st = self.store
        with st.lock:
            return st.conn.execute(st._SELECT + " WHERE list_page = ? AND seq > ? ORDER BY seq LIMIT ? OFFSET ?",
                                   (self.page_id, after, limit, offset)).fetchall()

    def __iter__(self) -> Iterator[Subscriber]:
        last = -1
        while True:
            rows = self._rows(last, 1000)
            if not rows:
                return
            last = rows[-1][0]
            yield from (self.store._obj(r) for r in rows)

    def __len__(self) -> int:
        st = self.store
        with st.lock:
            return st.conn.execute("SELECT COUNT(*) FROM subs WHERE list_page = ?", (self.page_id,)).fetchone()[0]

    def __getitem__(self, i):
        if not isinstance(i, slice) or i.step not in (None, 1):
            raise TypeError("a Page's listing takes slices [start:stop]")
        start = max(0, i.start or 0)
        stop = i.stop if i.stop is not None else 1 << 62
        if stop <= start:
            return []
        return [self.store._obj(r) for r in self._rows(-1, stop - start, start)]
