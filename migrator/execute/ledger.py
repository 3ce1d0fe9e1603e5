"""The send ledger: one row per planned send and every transition, committed in groups.

A slice of rows is marked `in_flight` in one transaction *before* its requests leave;
results are written back in one transaction per group (every ~0.2 s), so durability costs a
few commits per second, not one per send. After a crash, leftover `in_flight` rows become
`unknown` (`recover`) and only receipts or `--resend-unknown` move them on.
Works on the workspace (`schema="main"`) or on a dry run's scratch copy (`schema="dry"`).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from migrator.store.schema_execute import LEDGER_DDL

STATES = ("planned", "in_flight", "sent", "skipped", "failed", "unknown")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@dataclass(frozen=True)
class Claimed:
    """A row marked in_flight, with what its request needs (the token lives only in memory)."""

    send_id: int
    token_id: int
    token: str
    campaign_key: str
    message_key: str
    batch: int
    attempts: int


@dataclass(frozen=True)
class Result:
    """What happened to one claimed row; written back by `Ledger.record`."""

    send_id: int
    state: str                      # sent | unknown | failed | skipped | planned (released)
    attempted: bool                 # a request left for it (counts as an attempt)
    reason: str | None = None
    error_code: int | None = None
    error: str | None = None
    tracking_id: str | None = None
    not_before: int | None = None   # for released rows: when to try again
    mm_state: str | None = None     # recipient never: what to teach tokens.mm_state


class Ledger:
    def __init__(self, conn: sqlite3.Connection, plan_id: str, *, schema: str = "main", clock=None):
        import time

        self.conn = conn
        self.plan_id = plan_id
        self.s = schema
        self.clock = clock or time.time
        self._scratch_path: str | None = None
        self.screen = None      # claim-time checks (execute/sendable.Screen), set by the engine

    @classmethod
    def scratch(cls, conn: sqlite3.Connection, plan_id: str, *, clock=None) -> "Ledger":
        """An in-memory ledger for a dry run, seeded with the workspace's real state of the plan."""
        try:
            conn.execute("DETACH DATABASE dry")
        except sqlite3.OperationalError:
            pass
        import os
        import tempfile

        # a temporary file, not ':memory:', so a dry run of 10M sends keeps memory flat
        fd, path = tempfile.mkstemp(prefix="migrator-dry-", suffix=".db")
        os.close(fd)
        conn.execute("ATTACH DATABASE ? AS dry", (path,))
        conn.execute("PRAGMA dry.journal_mode = OFF")
        conn.execute("PRAGMA dry.synchronous = OFF")
        conn.executescript(LEDGER_DDL.format(s="dry"))
        for t in ("exec_plans", "exec_campaigns", "exec_sends"):
            conn.execute(f"INSERT INTO dry.{t} SELECT * FROM main.{t} WHERE plan_id = ?", (plan_id,))
        ledger = cls(conn, plan_id, schema="dry", clock=clock)
        ledger._scratch_path = path
        return ledger

    def close_scratch(self) -> None:
        if self.s == "dry":
            import os

            self.conn.execute("DETACH DATABASE dry")
            try:
                os.unlink(self._scratch_path)
            except OSError:
                pass

    def t(self, name: str) -> str:
        return f"{self.s}.{name}"

    # ------------------------------------------------------------------ setup
    def ensure_rows(self) -> int:
        """Copy the plan's sends into the ledger (once); returns the ledger's row count."""
        now = int(self.clock())
        with transaction(self.conn):
            self.conn.execute(f"INSERT OR IGNORE INTO {self.t('exec_plans')} (plan_id, first_run_at, updated_at) "
                              "VALUES (?, ?, ?)", (self.plan_id, now, now))
            have = self.conn.execute(f"SELECT COUNT(*) FROM {self.t('exec_sends')} WHERE plan_id = ?",
                                     (self.plan_id,)).fetchone()[0]
            planned = self.conn.execute("SELECT COUNT(*) FROM main.plan_sends WHERE plan_id = ?",
                                        (self.plan_id,)).fetchone()[0]
            if have < planned:
                self.conn.execute(
                    f"INSERT OR IGNORE INTO {self.t('exec_sends')} (plan_id, send_id, token_id, campaign_key, "
                    "message_key, batch, not_before, updated_at) SELECT plan_id, send_id, token_id, campaign_key, "
                    "message_key, batch, not_before, ? FROM main.plan_sends WHERE plan_id = ?", (now, self.plan_id))
                have = planned
        return have

    def recover(self) -> int:
        """Rows left in flight by a run that died: their requests may have gone out -> unknown."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self.t('exec_sends')} SET state = 'unknown', reason = 'interrupted', updated_at = ? "
                "WHERE plan_id = ? AND state = 'in_flight'", (int(self.clock()), self.plan_id))
        return cur.rowcount

    def resend_unknown(self) -> int:
        """--resend-unknown: unknown rows (not settled by receipts) go back to planned."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self.t('exec_sends')} SET state = 'planned', reason = 'resend_unknown', updated_at = ? "
                "WHERE plan_id = ? AND state = 'unknown'", (int(self.clock()), self.plan_id))
        return cur.rowcount

    # ------------------------------------------------------------------ the hot path
    def claim(self, campaign_key: str, limit: int, *, now: float, max_batch: int) -> list[Claimed]:
        """Mark up to `limit` due planned rows of a campaign in_flight (one commit) and return them.

        Under the same write lock, `self.screen` (execute/sendable.py) first moves the due rows that
        must not go now (stopped token, outside the recipient's window, person cadence) out of the way.
        """
        with transaction(self.conn):
            if self.screen is not None:
                self.screen.settle(self.conn, campaign_key, now=now, max_batch=max_batch, limit=limit)
            rows = self.conn.execute(
                f"SELECT e.send_id, e.token_id, t.token, e.campaign_key, e.message_key, e.batch, e.attempts "
                f"FROM {self.t('exec_sends')} e JOIN main.tokens t ON t.id = e.token_id "
                "WHERE e.plan_id = ? AND e.state = 'planned' AND e.campaign_key = ? AND e.batch <= ? "
                "AND e.not_before <= ? ORDER BY e.batch, e.send_id LIMIT ?",
                (self.plan_id, campaign_key, max_batch, int(now), limit)).fetchall()
            if not rows:
                return []
            self.conn.executemany(
                f"UPDATE {self.t('exec_sends')} SET state = 'in_flight', updated_at = ? "
                "WHERE plan_id = ? AND send_id = ? AND state = 'planned'",
                [(int(now), self.plan_id, r[0]) for r in rows])
        return [Claimed(*r) for r in rows]

    def record(self, results: Iterable[Result], *, extra=None) -> int:
        """Write a group of results in one transaction; `extra(conn)` runs in it too (heartbeat)."""
        results = list(results)
        now = int(self.clock())
        with transaction(self.conn):
            sql = (f"UPDATE {self.t('exec_sends')} SET state = ?, reason = ?, error_code = ?, error = ?, "
                   "tracking_id = COALESCE(?, tracking_id), attempts = attempts + ?, updated_at = ?, "
                   "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
                   "not_before = COALESCE(?, not_before), mm_state = COALESCE(?, mm_state), "
                   "mm_applied = CASE WHEN ? IS NULL THEN mm_applied ELSE 0 END "
                   "WHERE plan_id = ? AND send_id = ?")
            self.conn.executemany(sql, [
                (r.state, r.reason, r.error_code, r.error, r.tracking_id, int(r.attempted), now, r.state, now,
                 r.not_before, r.mm_state, r.mm_state, self.plan_id, r.send_id) for r in results])
            if extra is not None:
                extra(self.conn)
        return len(results)

    def close_campaign(self, campaign_key: str, state: str, reason: str, error: str | None = None,
                       code: int | None = None) -> int:
        """Every still-planned row of a campaign -> `state` (skipped | failed) with the reason."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self.t('exec_sends')} SET state = ?, reason = ?, error = ?, error_code = ?, "
                "updated_at = ? WHERE plan_id = ? AND campaign_key = ? AND state = 'planned'",
                (state, reason, error, code, int(self.clock()), self.plan_id, campaign_key))
        return cur.rowcount

    def close_message(self, message_key: str, reason: str, error: str | None, code: int | None) -> int:
        """A message Meta refuses as written: its remaining planned rows fail with the error."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self.t('exec_sends')} SET state = 'failed', reason = ?, error = ?, error_code = ?, "
                "updated_at = ? WHERE plan_id = ? AND message_key = ? AND state = 'planned'",
                (reason, error, code, int(self.clock()), self.plan_id, message_key))
        return cur.rowcount

    # ------------------------------------------------------------------ questions
    def first_open_batch(self, campaign_keys: Iterable[str]) -> int | None:
        out = None
        for k in campaign_keys:
            b = self.conn.execute(f"SELECT MIN(batch) FROM {self.t('exec_sends')} WHERE plan_id = ? "
                                  "AND state = 'planned' AND campaign_key = ?", (self.plan_id, k)).fetchone()[0]
            if b is not None and (out is None or b < out):
                out = b
        return out

    def next_due(self, campaign_key: str, max_batch: int) -> int | None:
        """Earliest not_before of the campaign's planned rows within the batch limit."""
        return self.conn.execute(
            f"SELECT MIN(not_before) FROM {self.t('exec_sends')} WHERE plan_id = ? AND state = 'planned' "
            "AND campaign_key = ? AND batch <= ?", (self.plan_id, campaign_key, max_batch)).fetchone()[0]

    def open_count(self, campaign_key: str, max_batch: int | None = None) -> int:
        sql = (f"SELECT COUNT(*) FROM {self.t('exec_sends')} WHERE plan_id = ? AND state = 'planned' "
               "AND campaign_key = ?")
        args: list = [self.plan_id, campaign_key]
        if max_batch is not None:
            sql += " AND batch <= ?"
            args.append(max_batch)
        return self.conn.execute(sql, args).fetchone()[0]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for state, n in self.conn.execute(f"SELECT state, COUNT(*) FROM {self.t('exec_sends')} "
                                          "WHERE plan_id = ? GROUP BY state", (self.plan_id,)):
            out[state] = n
        return out

    def reasons(self) -> dict[str, int]:
        """Counts of skipped/failed/unknown reasons (for the summary)."""
        return {f"{st}:{r}": n for st, r, n in self.conn.execute(
            f"SELECT state, reason, COUNT(*) FROM {self.t('exec_sends')} WHERE plan_id = ? "
            "AND state IN ('skipped', 'failed', 'unknown') GROUP BY state, reason ORDER BY 3 DESC",
            (self.plan_id,))}

    def set_status(self, status: str) -> None:
        with transaction(self.conn):
            self.conn.execute(f"UPDATE {self.t('exec_plans')} SET status = ?, updated_at = ? WHERE plan_id = ?",
                              (status, int(self.clock()), self.plan_id))

    # ------------------------------------------------------------------ what sends teach the inventory
    def apply_mm_states(self) -> int:
        """Copy pending recipient-never findings to tokens.mm_state (workspace ledger only).

        Done at the end of a run (and at the start of the next after a crash) together with
        re-recording the workspace fingerprints, so these writes never make the plan look stale.
        """
        if self.s != "main":
            return 0
        from migrator.plan.fingerprint import workspace_fingerprints

        with transaction(self.conn):
            pending = self.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE mm_applied = 0").fetchone()[0]
            if not pending:
                return 0
            before = workspace_fingerprints(self.conn)
            recorded = self.conn.execute("SELECT fingerprints FROM exec_plans WHERE plan_id = ?",
                                         (self.plan_id,)).fetchone()
            ours = bool(recorded and recorded[0] and json.loads(recorded[0]) == before)
            self.conn.execute(
                "UPDATE tokens SET mm_state = e.mm_state, mm_state_code = e.error_code, mm_state_at = e.updated_at "
                "FROM (SELECT token_id, mm_state, error_code, updated_at FROM exec_sends WHERE mm_applied = 0) e "
                "WHERE tokens.id = e.token_id")
            self.conn.execute("UPDATE exec_sends SET mm_applied = 1 WHERE mm_applied = 0")
            if ours:  # only launder our own change, never one made by someone else meanwhile
                self.conn.execute("UPDATE exec_plans SET fingerprints = ? WHERE plan_id = ?",
                                  (json.dumps(workspace_fingerprints(self.conn)), self.plan_id))
        return pending

    def record_fingerprints(self) -> None:
        """Remember the workspace fingerprints the executor accepted (a fresh plan, first run)."""
        if self.s != "main":
            return
        from migrator.plan.fingerprint import workspace_fingerprints

        with transaction(self.conn):
            self.conn.execute("UPDATE exec_plans SET fingerprints = ? WHERE plan_id = ?",
                              (json.dumps(workspace_fingerprints(self.conn)), self.plan_id))
