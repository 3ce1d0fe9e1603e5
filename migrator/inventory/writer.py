"""Batched, order-independent merging of token observations into the workspace.

Merge rule ("the last event wins", per field group, commutative so that replaying webhook
deliveries in any order gives the same state):
- profile (title, payload, time zone, expiry, ...): the observation with the greatest
  (time, key) replaces it; older observations only fill fields that are still empty;
- status (active/stopped): the greatest (time, key) stop/resume/opt-in/snapshot wins.
Snapshots (CSV, token listings) are observed at ingest time, so they are newer than every
webhook event logged before; they only overwrite the fields they carry.
"""

from __future__ import annotations

import sqlite3

from migrator.inventory.tokens import TokenObs
from migrator.privacy import short_hash

PROFILE_FIELDS = (
    "page_id", "psid", "topic_title", "payload", "timezone", "country", "user_token_status",
    "reoptin", "frequency", "token_expiry", "created_at", "next_eligible_at", "last_sent_at",
)
# fields a webhook opt-in carries in full (a newer opt-in replaces them, nulls included)
EVENT_FIELDS = ("topic_title", "payload", "timezone", "user_token_status", "reoptin",
                "frequency", "token_expiry")

_COLUMNS = ("token", "token_hash") + PROFILE_FIELDS + (
    "status", "source", "profile_at", "profile_key", "status_at", "status_key",
    "first_run", "updated_run")

_P = ("(excluded.profile_at IS NOT NULL AND (excluded.profile_at, excluded.profile_key) > "
      "(coalesce(tokens.profile_at, -1), coalesce(tokens.profile_key, '')))")
_S = ("(excluded.status_at IS NOT NULL AND (excluded.status_at, excluded.status_key) > "
      "(coalesce(tokens.status_at, -1), coalesce(tokens.status_key, '')))")


def _upsert_sql(mode: str) -> str:
    sets = []
    for f in PROFILE_FIELDS:
        newer = f"excluded.{f}" if (mode == "event" and f in EVENT_FIELDS) else f"coalesce(excluded.{f}, tokens.{f})"
        sets.append(f"{f} = CASE WHEN {_P} THEN {newer} ELSE coalesce(tokens.{f}, excluded.{f}) END")
    for f in ("profile_at", "profile_key", "source"):
        sets.append(f"{f} = CASE WHEN {_P} THEN excluded.{f} ELSE tokens.{f} END")
    for f in ("status", "status_at", "status_key"):
        sets.append(f"{f} = CASE WHEN {_S} THEN excluded.{f} ELSE tokens.{f} END")
    sets.append("updated_run = excluded.updated_run")
    placeholders = ", ".join("coalesce(?, 'active')" if c == "status" else "?" for c in _COLUMNS)
    sql = (f"INSERT INTO tokens ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
           f"ON CONFLICT(token) DO UPDATE SET {', '.join(sets)}")
    if mode == "snapshot":
        # a snapshot row that would change nothing is a duplicate (re-ingest is a no-op)
        same = [f"coalesce(excluded.{f}, tokens.{f}) IS tokens.{f}" for f in PROFILE_FIELDS]
        same.append(f"(excluded.status_at IS NULL OR excluded.status IS tokens.status)")
        sql += " WHERE NOT (" + " AND ".join(same) + ")"
    return sql


UPSERT_SNAPSHOT = _upsert_sql("snapshot")
UPSERT_EVENT = _upsert_sql("event")
INSERT_EVENT = ("INSERT OR IGNORE INTO token_events (event_key, token, page_id, psid, ts_ms, kind, data,"
                " run_id, path, line) VALUES (?,?,?,?,?,?,?,?,?,?)")


_STAGE_COLS = ", ".join(_COLUMNS)
_STAGE_SELECT = ", ".join({"status": "coalesce(status, 'active')", "token_hash": "short_hash(token)"}.get(c, c)
                          for c in _COLUMNS)
_STAGE_INPUT = tuple(c for c in _COLUMNS if c != "token_hash")


def _merge_sql(upsert: str, order: str) -> str:
    """The upsert as one set-based statement over the staged rows, in index order."""
    head, tail = upsert.split(" VALUES ", 1)
    conflict = tail.split(" ON CONFLICT", 1)[1]
    return f"{head} SELECT {_STAGE_SELECT} FROM temp.token_stage WHERE true ORDER BY {order} ON CONFLICT{conflict}"


MERGE_SNAPSHOT = _merge_sql(UPSERT_SNAPSHOT, "token, seq")
MERGE_EVENT = _merge_sql(UPSERT_EVENT, "token")


class TokenWriter:
    """Stages observations in a temp table and merges each chunk with set-based SQL.

    Staging then merging in token order turns random B-tree inserts into ordered ones,
    and keeps memory flat: at most `chunk` rows are held in Python or the temp table.
    """

    def __init__(self, conn: sqlite3.Connection, *, run_id: int, source: str, observed_ms: int,
                 path: str, chunk: int = 50_000):
        self.conn = conn
        self.run_id = run_id
        self.source = source
        self.observed_ms = observed_ms
        self.path = path
        self.chunk = chunk
        self._rows: list[tuple] = []
        self._events: list[tuple] = []
        self.accepted = 0
        self.duplicates = 0
        conn.execute("PRAGMA temp_store=MEMORY")  # a chunk is ~10 MB; keep staging off the disk
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS token_stage (seq INTEGER PRIMARY KEY, {_STAGE_COLS})")
        conn.create_function("short_hash", 1, short_hash, deterministic=True)
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS event_stage (event_key, token, page_id, psid, ts_ms,"
                     " kind, data, run_id, path, line)")

    def add(self, obs: TokenObs, line: int) -> None:
        if obs.kind is None:
            key = f"s{self.run_id:010d}{line:010d}"
            status_at = self.observed_ms if obs.status is not None else None
            self._rows.append(
                (obs.token,) + obs.profile() + (
                    obs.status, self.source, self.observed_ms, key, status_at,
                    key if status_at is not None else None, self.run_id, self.run_id))
        else:
            key = obs.event_key()
            self._events.append((key, obs.token, obs.page_id, obs.psid, obs.ts_ms, obs.kind, obs.data,
                                 self.run_id, self.path, line))
            profile_at = obs.ts_ms if obs.kind == "optin" else None
            self._rows.append(
                (obs.token,) + obs.profile() + (
                    obs.status, self.source, profile_at, key if profile_at is not None else None,
                    obs.ts_ms, key, self.run_id, self.run_id))
        if len(self._rows) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        c = self.conn
        c.executemany(f"INSERT INTO temp.token_stage ({', '.join(_STAGE_INPUT)}) "
                      f"VALUES ({', '.join('?' * len(_STAGE_INPUT))})", self._rows)
        if self._events:
            c.executemany("INSERT INTO temp.event_stage VALUES (?,?,?,?,?,?,?,?,?,?)", self._events)
            inserted = c.execute("INSERT OR IGNORE INTO token_events (event_key, token, page_id, psid, ts_ms,"
                                 " kind, data, run_id, path, line) SELECT * FROM temp.event_stage"
                                 " WHERE true ORDER BY event_key").rowcount
            self.accepted += inserted
            self.duplicates += len(self._events) - inserted
            # re-merging an already-known event is a no-op (same time and key): merge all
            c.execute(MERGE_EVENT)
            c.execute("DELETE FROM temp.event_stage")
        else:
            changed = c.execute(MERGE_SNAPSHOT).rowcount
            self.accepted += changed
            self.duplicates += len(self._rows) - changed
        c.execute("DELETE FROM temp.token_stage")
        self._rows.clear()
        self._events.clear()
