"""Order-independent, set-based merging of staged chunks into the workspace.

Merge rule ("the last event wins", per field group, commutative so that replaying webhook
deliveries in any order gives the same state):
- profile (title, payload, time zone, expiry, ...): the observation with the greatest
  (time, key) replaces it; older observations only fill fields that are still empty, except
  that an older webhook opt-in never fills what a newer opt-in left empty (an opt-in speaks
  for all its fields);
- status (active/stopped): the greatest (time, key) stop/resume/opt-in/snapshot wins.
Snapshots (CSV, token listings) are observed at ingest time, so they are newer than every
webhook event logged before; they only overwrite the fields they carry. A snapshot row's
key is `s<run><line>`, an event's key is its event_key.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

from migrator.inventory.stage import Staged
from migrator.inventory.workers import default_workers  # one per core

STAGE = "ingest_stage"  # the attached in-memory database each chunk is deserialized into

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

# the stored profile came from a webhook opt-in (a snapshot's key starts with 's')
_FROM_OPTIN = "(tokens.profile_key IS NOT NULL AND substr(tokens.profile_key, 1, 1) <> 's')"
# the run that first observed the snapshot's bytes (a re-ingest of the same file keeps its keys):
# printf('s%010d%010d', :snapshot_run, line), spelled as :snapshot_prefix ('s' and the run's ten
# digits, formatted once) and the line's ten digits cut from 10^10 + line: the same text for
# every line below 10^10, at two thirds of printf's cost (it runs twice per row of a 10M load)
_SNAPSHOT_KEY = ("(CASE WHEN line < 10000000000 THEN :snapshot_prefix || substr(10000000000 + line, 2)"
                 " ELSE printf('s%010d%010d', :snapshot_run, line) END)")
# what each tokens column is selected as, from a snapshot row and from an event row
_FROM_SNAPSHOT = {
    "status": "coalesce(status, 'active')", "source": ":source", "profile_at": ":observed",
    "profile_key": _SNAPSHOT_KEY,
    "status_at": "CASE WHEN status IS NULL THEN NULL ELSE :observed END",
    "status_key": f"CASE WHEN status IS NULL THEN NULL ELSE {_SNAPSHOT_KEY} END",
    "first_run": ":run", "updated_run": ":run",
}
_FROM_EVENT = {
    "country": "NULL", "created_at": "NULL", "next_eligible_at": "NULL", "last_sent_at": "NULL",
    "status": "CASE kind WHEN 'stop' THEN 'stopped' ELSE 'active' END", "source": ":source",
    "profile_at": "CASE kind WHEN 'optin' THEN ts_ms END",
    "profile_key": "CASE kind WHEN 'optin' THEN event_key END",
    "status_at": "ts_ms", "status_key": "event_key", "first_run": ":run", "updated_run": ":run",
}


def _staged(table: str, known: bool = True) -> str:
    """FROM, WHERE and ORDER BY of the merge's SELECT over a stage table, in token order:
    snapshots were staged sorted by token, events by time and key (for token_events), so
    those are sorted here, on the narrow columns the merge reads.

    The stage table is read directly, not through a subquery: SQLite runs a subquery with
    an ORDER BY as a co-routine, which cost 0.9 s of main-process CPU per 1M CSV rows (a
    third of the merge). `ORDER BY rowid` over a plain table scan needs no sort."""
    if table == "snapshot_stage":
        return f"FROM {STAGE}.snapshot_stage WHERE true ORDER BY rowid"
    if not known:  # no event of the chunk can have been logged before this run
        return f"FROM {STAGE}.event_stage WHERE true ORDER BY token"
    # an event an earlier ingest already applied is not applied again
    return (f"FROM {STAGE}.event_stage s WHERE NOT EXISTS (SELECT 1 FROM main.token_events e"
            " WHERE e.ts_ms = s.ts_ms AND e.event_key = s.event_key AND e.run_id IS NOT :run)"
            " ORDER BY token")


def _insert_sql(mode: str, known: bool = True) -> str:
    """The INSERT ... SELECT of a stage table's rows into `tokens`, without a conflict clause."""
    select = _FROM_EVENT if mode == "event" else _FROM_SNAPSHOT
    table = "event_stage" if mode == "event" else "snapshot_stage"
    return (f"INSERT INTO main.tokens ({', '.join(_COLUMNS)}) "
            f"SELECT {', '.join(select.get(c, c) for c in _COLUMNS)} {_staged(table, known)}")


def _merge_sql(mode: str, known: bool = True) -> str:
    """_insert_sql with the upsert that applies the merge rule to a token already stored."""
    sets = []
    for f in PROFILE_FIELDS:
        if mode == "event" and f in EVENT_FIELDS:
            # an opt-in speaks for all these fields, nulls included: the newest one wins
            # them whole, and an older one only fills what a snapshot (not an opt-in) left empty
            newer = f"excluded.{f}"
            older = f"CASE WHEN {_FROM_OPTIN} THEN tokens.{f} ELSE coalesce(tokens.{f}, excluded.{f}) END"
        else:
            newer, older = f"coalesce(excluded.{f}, tokens.{f})", f"coalesce(tokens.{f}, excluded.{f})"
        sets.append(f"{f} = CASE WHEN {_P} THEN {newer} ELSE {older} END")
    for f in ("profile_at", "profile_key", "source"):
        sets.append(f"{f} = CASE WHEN {_P} THEN excluded.{f} ELSE tokens.{f} END")
    for f in ("status", "status_at", "status_key"):
        sets.append(f"{f} = CASE WHEN {_S} THEN excluded.{f} ELSE tokens.{f} END")
    sets.append("updated_run = excluded.updated_run")
    sql = f"{_insert_sql(mode, known)} ON CONFLICT(token) DO UPDATE SET {', '.join(sets)}"
    if mode == "snapshot":
        # a snapshot row that would change nothing is a duplicate (re-ingest is a no-op); an
        # observation older than the stored one (a file ingested again keeps its first time)
        # changes only what is empty
        same = [f"(coalesce(excluded.{f}, tokens.{f}) IS tokens.{f} OR (tokens.{f} IS NOT NULL AND NOT {_P}))"
                for f in PROFILE_FIELDS]
        same.append(f"(excluded.status_at IS NULL OR excluded.status IS tokens.status OR NOT {_S})")
        sql += " WHERE NOT (" + " AND ".join(same) + ")"
    return sql


MERGE_SNAPSHOT = _merge_sql("snapshot")
# the same rows inserted without the upsert, for a chunk none of whose tokens can be in the
# workspace or twice in the chunk (see StageMerger.merge): SQLite runs an INSERT ... SELECT with
# an upsert as a co-routine over the SELECT, 5 % of the main process's instructions a row
INSERT_SNAPSHOT = _insert_sql("snapshot")
MERGE_EVENT = _merge_sql("event")
# the same without asking token_events whether each event was logged by an earlier run, for a
# chunk whose times all lie outside those of the events logged before this run (a fresh
# workspace, or deliveries newer than the log): that lookup was 0.7 s per 1M events
MERGE_NEW_EVENTS = _merge_sql("event", known=False)
INSERT_EVENTS = (  # staged sorted by (ts_ms, event_key), the order of its unique index
    "INSERT OR IGNORE INTO main.token_events (event_key, token, page_id, psid, ts_ms, kind, data,"
    " run_id, path, line) SELECT event_key, token, page_id, psid, ts_ms, kind,"
    f" data, :run, :path, line FROM {STAGE}.event_stage WHERE true ORDER BY rowid")
# whether this chunk added an opt-in to token_events (it was not known before this run): asked
# only when a chunk inserted some events but not all of them
NEW_OPTIN = (f"SELECT EXISTS (SELECT 1 FROM {STAGE}.event_stage s WHERE s.kind = 'optin' AND EXISTS"
             " (SELECT 1 FROM main.token_events e WHERE e.ts_ms = s.ts_ms AND e.event_key = s.event_key"
             " AND e.run_id = :run))")


# A token belongs to one Page (RN tokens are issued per Page): a snapshot row naming another
# page than the workspace already holds for it, or than an earlier row of the same chunk, is a
# conflict. Merged, it would move the subscriber or be dropped as "accepted"; it is a reject.
PAGE_CONFLICTS = (
    f"SELECT s.rowid, s.line, s.page_id, coalesce(t.page_id, f.page_id) FROM {STAGE}.snapshot_stage s"
    " LEFT JOIN main.tokens t ON t.token = s.token"
    f" LEFT JOIN (SELECT token, page_id, MIN(rowid) AS first FROM {STAGE}.snapshot_stage GROUP BY token) f"
    " ON f.token = s.token"
    " WHERE (t.page_id IS NOT NULL AND t.page_id != s.page_id)"
    " OR (t.page_id IS NULL AND f.first != s.rowid AND f.page_id != s.page_id)")
# the same when no token has two rows in the chunk (the common case): only the workspace's
# page can differ, and the chunk is not grouped by token
PAGE_CONFLICTS_WITH_WORKSPACE = (
    f"SELECT s.rowid, s.line, s.page_id, t.page_id FROM {STAGE}.snapshot_stage s"
    " JOIN main.tokens t ON t.token = s.token WHERE t.page_id IS NOT NULL AND t.page_id != s.page_id")

# whether any workspace token lies between the chunk's least and greatest: a chunk of a file
# sorted by token, or of a first load, usually has none, and then the join above (a seek per
# row, ~0.1 s per 1M rows) and the upsert are skipped. The stage holds its snapshot rows sorted
# by token (StageSink.finish; Python's order of str is SQLite's BINARY order of their UTF-8), so
# the least and greatest are its first and last rows: four seeks in all. min() and max() scanned
# the stage twice, as much as the upsert this check saves.
ANY_KNOWN_TOKEN_IN_RANGE = (
    f"SELECT EXISTS (SELECT 1 FROM main.tokens WHERE token BETWEEN"
    f" (SELECT token FROM {STAGE}.snapshot_stage ORDER BY rowid LIMIT 1)"
    f" AND (SELECT token FROM {STAGE}.snapshot_stage ORDER BY rowid DESC LIMIT 1))")


class StageMerger:
    """Merges staged chunks of one input into the workspace, inside the caller's transaction.

    The stage database must be attached (`attached_stage`) before that transaction starts:
    SQLite refuses ATTACH inside a transaction, but `deserialize` into it works there.
    """

    def __init__(self, conn: sqlite3.Connection, *, run_id: int, source: str, observed_ms: int,
                 path: str, snapshot_run: int | None = None):
        self.conn = conn
        self.params = {"run": run_id, "source": source, "observed": observed_ms, "path": path,
                       "snapshot_run": run_id if snapshot_run is None else snapshot_run}
        self.params["snapshot_prefix"] = "s%010d" % self.params["snapshot_run"]
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.first_rejects: list[dict] = []
        self.new_optins = False  # some opt-in event of this run was new to token_events
        # the times of the events logged before this run (token_events is keyed by time first:
        # two seeks; min() and max() in one SELECT would scan the table), None when there were none
        self.logged = conn.execute("SELECT (SELECT min(ts_ms) FROM main.token_events),"
                                   " (SELECT max(ts_ms) FROM main.token_events)").fetchone()

    def merge(self, staged: Staged) -> None:
        """Merge the rows of `staged`, already deserialized into the stage schema."""
        c = self.conn
        if staged.events:
            inserted = c.execute(INSERT_EVENTS, self.params).rowcount
            self.accepted += inserted
            self.duplicates += staged.events - inserted
            if inserted and not self.new_optins:
                self.new_optins = bool(c.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {STAGE}.event_stage WHERE kind = 'optin')"
                    if inserted == staged.events else NEW_OPTIN, self.params).fetchone()[0])
            c.execute(MERGE_EVENT if self._may_be_known() else MERGE_NEW_EVENTS, self.params)
        if staged.snapshots:
            # no token twice in the chunk and no workspace token between its least and greatest
            # (a chunk of a file sorted by token, or of a first load): no row can conflict, and
            # one that did anyway would fail the plain INSERT (and roll the file back), not merge
            fresh = not staged.repeated_tokens and not c.execute(ANY_KNOWN_TOKEN_IN_RANGE).fetchone()[0]
            conflicts = 0 if fresh else self._page_conflicts(staged.repeated_tokens)
            changed = c.execute(INSERT_SNAPSHOT if fresh else MERGE_SNAPSHOT, self.params).rowcount
            self.accepted += changed
            self.duplicates += staged.snapshots - conflicts - changed

    def _may_be_known(self) -> bool:
        """Whether an event of the staged chunk may have been logged before this run (and must
        then not be applied again): only when its times overlap those logged before."""
        lo, hi = self.logged
        if lo is None:
            return False
        first, last = self.conn.execute(f"SELECT min(ts_ms), max(ts_ms) FROM {STAGE}.event_stage").fetchone()
        return first is not None and first <= hi and last >= lo

    def _page_conflicts(self, repeated_tokens: bool = True) -> int:
        """Reject (and take out of the stage) the rows that would move a token to another page."""
        c = self.conn
        rows = c.execute(PAGE_CONFLICTS if repeated_tokens else PAGE_CONFLICTS_WITH_WORKSPACE).fetchall()
        if not rows:
            return 0
        rejects = [(self.params["run"], self.params["path"], line,
                    f"token already belongs to page {owner}; this row names page {page}", None,
                    "reject", "page_id", page) for _, line, page, owner in rows]
        c.executemany("INSERT INTO main.rejects (run_id, path, line, reason, excerpt, severity, field, value)"
                      " VALUES (?,?,?,?,?,?,?,?)", rejects)
        c.executemany(f"DELETE FROM {STAGE}.snapshot_stage WHERE rowid = ?", [(r[0],) for r in rows])
        self.rejected += len(rows)
        room = 20 - len(self.first_rejects)
        self.first_rejects += [{"line": r[2], "reason": r[3]} for r in rejects[:max(0, room)]]
        return len(rows)


# secondary indexes nothing reads while tokens are ingested, with the table they index
DEFERRABLE_INDEXES = {"tokens_person": "tokens", "token_events_token": "token_events"}


@contextmanager
def deferred_indexes(conn: sqlite3.Connection, expected_rows: int) -> Iterator[None]:
    """Drop the deferrable indexes of tables no bigger than this load; build them at the end.

    Rows arrive in random (page, person) and token order, so each keeps one of these
    indexes costs a random B-tree insert (2-4 us); building the index once from a sort is
    cheaper when the load is at least as big as the table. Runs inside the file's
    transaction: if the load fails, the rollback brings the indexes back as they were.
    """
    rebuild = []
    for index, table in DEFERRABLE_INDEXES.items():
        # tokens: its largest rowid (a bound, read in one seek); token_events has no rowid, so
        # its rows are counted, no further than this load
        existing = conn.execute(
            f"SELECT coalesce(max(rowid), 0) FROM main.{table}" if table == "tokens" else
            f"SELECT count(*) FROM (SELECT 1 FROM main.{table} LIMIT ?)",
            () if table == "tokens" else (expected_rows + 1,)).fetchone()[0]
        row = conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'index' AND name = ?",
                           (index,)).fetchone()
        if row and expected_rows >= existing:
            conn.execute(f"DROP INDEX main.{index}")
            rebuild.append(row[0])
    yield
    if not rebuild:
        return
    # CREATE INDEX sorts the table's keys: with helper threads SQLite sorts parts of it on the
    # other cores (idle now: the workers have finished), 20-40 % less wall time
    threads = conn.execute("PRAGMA threads").fetchone()[0]
    conn.execute(f"PRAGMA threads={max(threads, default_workers())}")
    try:
        for sql in rebuild:
            conn.execute(sql)
    finally:
        conn.execute(f"PRAGMA threads={threads}")



@contextmanager
def attached_stage(conn: sqlite3.Connection) -> Iterator[None]:
    """The stage schema each chunk is deserialized into, attached around the ingest's
    transactions (SQLite refuses ATTACH inside one)."""
    if any(row[1] == STAGE for row in conn.execute("PRAGMA database_list")):
        yield  # an outer ingest attached it
        return
    conn.execute(f"ATTACH DATABASE ':memory:' AS {STAGE}")
    try:
        yield
    finally:
        conn.execute(f"DETACH DATABASE {STAGE}")
