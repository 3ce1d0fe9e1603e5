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
    "status", "source", "profile_at", "profile_key", "status_at", "status_key", "row_hash",
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
    sets.append("row_hash = " + ("excluded.row_hash" if mode == "snapshot" else "tokens.row_hash"))
    sets.append("updated_run = excluded.updated_run")
    placeholders = ", ".join("coalesce(?, 'active')" if c == "status" else "?" for c in _COLUMNS)
    sql = (f"INSERT INTO tokens ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
           f"ON CONFLICT(token) DO UPDATE SET {', '.join(sets)}")
    if mode == "snapshot":
        sql += " WHERE excluded.row_hash IS NOT tokens.row_hash"
    return sql


UPSERT_SNAPSHOT = _upsert_sql("snapshot")
UPSERT_EVENT = _upsert_sql("event")
INSERT_EVENT = ("INSERT OR IGNORE INTO token_events (event_key, token, page_id, psid, ts_ms, kind, data,"
                " run_id, path, line) VALUES (?,?,?,?,?,?,?,?,?,?)")


class TokenWriter:
    """Buffers observations and writes them in batches; reports accepted vs duplicate."""

    def __init__(self, conn: sqlite3.Connection, *, run_id: int, source: str, observed_ms: int,
                 path: str, batch_size: int = 5000):
        self.conn = conn
        self.run_id = run_id
        self.source = source
        self.observed_ms = observed_ms
        self.path = path
        self.batch_size = batch_size
        self._snap: list[tuple] = []
        self._events: list[tuple] = []
        self._event_rows: list[tuple] = []
        self.accepted = 0
        self.duplicates = 0

    def add(self, obs: TokenObs, line: int) -> None:
        if obs.kind is None:
            self._add_snapshot(obs, line)
        else:
            self._add_event(obs, line)

    def _add_snapshot(self, obs: TokenObs, line: int) -> None:
        key = f"s{self.run_id:010d}{line:010d}"
        status_at = self.observed_ms if obs.status is not None else None
        self._snap.append(
            (obs.token, short_hash(obs.token)) + obs.profile() + (
                obs.status, self.source, self.observed_ms, key, status_at,
                key if status_at is not None else None, obs.row_hash(), self.run_id, self.run_id))
        if len(self._snap) >= self.batch_size:
            self._flush_snapshots()

    def _add_event(self, obs: TokenObs, line: int) -> None:
        key = obs.event_key()
        self._events.append((key, obs.token, obs.page_id, obs.psid, obs.ts_ms, obs.kind, obs.data,
                             self.run_id, self.path, line))
        profile_at = obs.ts_ms if obs.kind == "optin" else None
        self._event_rows.append(
            (obs.token, short_hash(obs.token)) + obs.profile() + (
                obs.status, self.source, profile_at, key if profile_at is not None else None,
                obs.ts_ms, key, None, self.run_id, self.run_id))
        if len(self._events) >= self.batch_size:
            self._flush_events()

    def _flush_snapshots(self) -> None:
        if not self._snap:
            return
        cur = self.conn.executemany(UPSERT_SNAPSHOT, self._snap)
        changed = cur.rowcount
        self.accepted += changed
        self.duplicates += len(self._snap) - changed
        self._snap.clear()

    def _flush_events(self) -> None:
        if not self._events:
            return
        cur = self.conn.executemany(INSERT_EVENT, self._events)
        inserted = cur.rowcount
        self.accepted += inserted
        self.duplicates += len(self._events) - inserted
        # re-merging an already-known event is a no-op (same time and key), so merge all
        self.conn.executemany(UPSERT_EVENT, self._event_rows)
        self._events.clear()
        self._event_rows.clear()

    def flush(self) -> None:
        self._flush_snapshots()
        self._flush_events()
