"""The send ledger: one row per planned send and every transition, committed in groups.

A slice of rows is claimed (`planned` -> `in_flight`) in one statement inside one transaction
*before* its requests leave; results are written back in one transaction per group (every
~0.2 s), so durability costs a few commits per second, not one per send.

Exactly once rests on four rules, each enforced here and nowhere else:
- a claim takes only rows that are still `planned` at that instant (UPDATE ... RETURNING) and the
  caller sends only what the claim returned, so two executors can never both take a row;
- `record()` moves only rows that are `in_flight` (unknown -> sent too, when the answer says sent),
  so nothing ever moves a `sent` row;
- receipts are facts: every MM echo/delivery/read is kept in `exec_receipts` whatever the row's
  state, and `settle_from_receipts` applies them wherever they can settle a row (at ingest, at
  recovery, before any re-send);
- an `unknown` row is re-sent only when a receipt would exist by now had Meta taken it
  (`resend_unknown`), or when a person names it.
Works on the workspace (`schema="main"`) or on a dry run's scratch copy (`schema="dry"`).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from migrator.store.schema_execute import COUNTS_DDL, LEDGER_0510, LEDGER_DDL
from migrator.store.workspace import transaction  # noqa: F401  (the workspace's one; re-exported)

STATES = ("planned", "in_flight", "sent", "skipped", "failed", "unknown")
# receipts that prove Meta accepted a send
SETTLING_FIELDS = ("echo", "delivery", "read")
# failure reasons `--retry-failed` may put back to planned: the cause was passing, not the send
TRANSIENT_FAILURES = ("retries_exhausted",)
# Meta's clock against ours: a receipt may carry a time up to this much before our claim
CLOCK_SLACK = 3600


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
    mm_state: str | None = None     # recipient never: what Meta told us about the token (mm_feedback)
    subcode: int | None = None
    error_class: str | None = None


@dataclass(frozen=True)
class ClaimPredicate:
    """An extra condition on claimable rows (e.g. "the token is still sendable now").

    `join` is SQL joined after `exec_sends e` (it may refer to `e`), `where` an SQL condition
    ANDed to the claim's; `join_params(now)` / `where_params(now)` give their `?` parameters.
    The claim's statement is built in one place (`Ledger._claimable_sql`) so a predicate added
    here holds at the instant of the claim, inside its transaction.
    """

    join: str = ""
    where: str = ""
    join_params: Callable[[int], tuple] = lambda now: ()
    where_params: Callable[[int], tuple] = lambda now: ()


@dataclass(frozen=True)
class ResendDecisions:
    """What `--resend-unknown` did with each unknown row, counted by reason (per row: resend_check)."""

    resent: dict[str, int]
    kept: dict[str, int]

    @property
    def resent_total(self) -> int:
        return sum(self.resent.values())


def resend_refusal(plan_id: str, rows: list[tuple[int, str | None, str | None]]) -> str:
    """Why `--resend SEND_ID` cannot re-send these rows (send_id, state or None, reason): what
    each row is and what to do instead. Only an `unknown` row can be re-sent by name."""
    def one(send_id: int, state: str | None, reason: str | None) -> str:
        why = f" ({reason})" if reason else ""
        if state is None:
            return (f"send {send_id} is not in plan {plan_id} (send ids are plan_sends.send_id; "
                    "`SELECT send_id, state FROM v_exec_sends WHERE state = 'unknown'` lists the unknown ones)")
        if state == "planned":
            return f"send {send_id} is planned, not sent yet: this command sends it anyway; drop --resend {send_id}"
        if state == "in_flight":
            return (f"send {send_id} was in flight when a run stopped: run `migrator ingest receipts FILE`, "
                    f"then this command without --resend {send_id} (it becomes sent or unknown); name it again "
                    "only if it is still unknown")
        if state == "sent":
            return (f"send {send_id} is sent{why}: Meta accepted it, it is never sent twice; "
                    "to message this person again, make a new plan")
        if state == "failed" and reason in TRANSIENT_FAILURES:
            return f"send {send_id} is failed{why}: put it back with --retry-failed {reason}, not --resend"
        return (f"send {send_id} is {state}{why}: only unknown sends can be re-sent by name; "
                "if the cause is gone, make a new plan")

    shown = [one(*r) for r in rows[:10]]
    more = f"; and {len(rows) - 10} more" if len(rows) > 10 else ""
    return "--resend: " + "; ".join(shown) + more


# per-row reasons written to exec_sends.resend_check
RESEND_NAMED = "resent:named"
RESEND_RECEIPTS_NEWER = "resent:receipts_newer_than_send"
KEEP_NO_NEWER_RECEIPT = "kept:no_receipt_newer_than_send"
KEEP_RECOVERED_NOW = "kept:unknown_since_this_run"


def settle_from_receipts(conn: sqlite3.Connection, *, plan_id: str | None = None, now: int | None = None,
                         new_receipts: str | None = None) -> int:
    """Apply the stored settling receipts to the rows they can settle; returns rows settled.

    A row is settled by an echo, delivery or read of its token under its campaign's message id:
    it becomes `sent(settled_by_receipt)` with the receipt's tracking id and time. Only a row
    whose request may have left can be settled (a planned row never claimed cannot), only by a
    receipt not older than its claim (minus CLOCK_SLACK for clock skew), and never by a receipt
    whose tracking id another row already holds (that send is accounted for). A
    delivery_failed turns an unknown row into failed(delivery_failed).

    Two directions, so that neither scans the ledger: from the unsettled rows (in flight or
    unknown: the partial index exec_sends_unsettled holds only them) to every stored receipt;
    and, at ingest, from the receipts just stored (`new_receipts`: a table of their event keys)
    to the rows they name, which covers released rows (planned again after a claim) too.
    """
    now = int(now if now is not None else time.time())
    plan_sql = "AND e.plan_id = ?" if plan_id else ""
    args: tuple = (plan_id,) if plan_id else ()
    cand = f"""
        SELECT e.plan_id, e.send_id, e.state, e.claimed_at, r.ts_ms, r.tracking_id, r.field
        FROM exec_sends e
        JOIN exec_campaigns c ON c.plan_id = e.plan_id AND c.campaign_key = e.campaign_key
        JOIN exec_receipts r ON r.token_id = e.token_id AND r.message_id = c.message_id
        WHERE e.state IN ('in_flight', 'unknown') {plan_sql}"""
    if new_receipts:
        cand += f"""
        UNION ALL
        SELECT e.plan_id, e.send_id, e.state, e.claimed_at, r.ts_ms, r.tracking_id, r.field
        FROM {new_receipts} n CROSS JOIN exec_receipts r ON r.event_key = n.event_key    -- CROSS: this order
        CROSS JOIN exec_campaigns c ON c.message_id = r.message_id
        CROSS JOIN exec_sends e ON e.plan_id = c.plan_id AND e.campaign_key = c.campaign_key
                                AND e.token_id = r.token_id
        WHERE e.state = 'planned' {plan_sql}"""
        args = args + args
    fields = ",".join(f"'{f}'" for f in SETTLING_FIELDS)
    conn.execute(f"""
        WITH cand AS ({cand}),
        hit AS (
            SELECT plan_id, send_id, MIN(ts_ms) AS ts, MAX(tracking_id) AS tid FROM cand
            WHERE field IN ({fields})
              AND (state != 'planned' OR claimed_at IS NOT NULL)
              AND (claimed_at IS NULL OR ts_ms >= (claimed_at - {CLOCK_SLACK}) * 1000)
              AND (tracking_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM exec_sends x WHERE x.tracking_id = cand.tracking_id))
            GROUP BY plan_id, send_id)
        UPDATE exec_sends SET state = 'sent', reason = 'settled_by_receipt',
               tracking_id = COALESCE(hit.tid, exec_sends.tracking_id),
               sent_at = COALESCE(exec_sends.sent_at, hit.ts / 1000), updated_at = ?
        FROM hit WHERE exec_sends.plan_id = hit.plan_id AND exec_sends.send_id = hit.send_id
        """, (*args, now))
    # not cur.rowcount (Python 3.11 gives -1 for a statement starting WITH) nor total_changes (it also
    # counts what the ledger's counter triggers write): changes() counts the UPDATE's own rows
    settled = conn.execute("SELECT changes()").fetchone()[0]
    args = (plan_id,) if plan_id else ()
    conn.execute(f"""
        WITH hit AS (
            SELECT e.plan_id, e.send_id FROM exec_sends e
            JOIN exec_campaigns c ON c.plan_id = e.plan_id AND c.campaign_key = e.campaign_key
            JOIN exec_receipts r ON r.token_id = e.token_id AND r.message_id = c.message_id
            WHERE e.state IN ('in_flight', 'unknown') {plan_sql} AND e.state = 'unknown'
              AND r.field = 'delivery_failed'
            GROUP BY e.plan_id, e.send_id)
        UPDATE exec_sends SET state = 'failed', reason = 'delivery_failed', updated_at = ?
        FROM hit WHERE exec_sends.plan_id = hit.plan_id AND exec_sends.send_id = hit.send_id
        """, (*args, now))
    return settled


class Ledger:
    """The send ledger of one plan. `sendable` (optional) narrows what a claim may take."""

    def __init__(self, conn: sqlite3.Connection, plan_id: str, *, schema: str = "main", clock=None,
                 sendable: ClaimPredicate | None = None):
        self.conn = conn
        self.plan_id = plan_id
        self.schema = schema
        self.clock = clock or time.time
        self.sendable = sendable or ClaimPredicate()
        self._scratch_path: str | None = None
        self._cap: int | None = None            # a dry run's scratch copy holds planned rows up to this batch
        self._outside: dict[str, int] = {}      # ... and counts the planned rows beyond it, per campaign
        self.screen = None      # claim-time checks (execute/sendable.Screen), set by the engine

    @classmethod
    def scratch(cls, conn: sqlite3.Connection, plan_id: str, *, clock=None, batches: int | None = None) -> "Ledger":
        """A throw-away ledger for a dry run, seeded with the workspace's real state of the plan.

        With `batches` (a dry run of `--batches N`) the copy holds every row that is not planned
        and the planned rows of the N batches from the first open one: the only ones the run can
        claim. The planned rows beyond are counted, not copied (`counts`, `open_count`), so a dry
        run of one batch costs the batch, not the ledger (a 4.9M-row copy took minutes at 10M).
        """
        try:
            conn.execute("DETACH DATABASE dry")
        except sqlite3.OperationalError:
            pass
        # a temporary file, not ':memory:', so a dry run of 10M sends keeps memory flat
        fd, path = tempfile.mkstemp(prefix="migrator-dry-", suffix=".db")
        os.close(fd)
        conn.execute("ATTACH DATABASE ? AS dry", (path,))
        conn.execute("PRAGMA dry.journal_mode = OFF")
        conn.execute("PRAGMA dry.synchronous = OFF")
        conn.executescript(LEDGER_DDL.format(s="dry") + LEDGER_0510.format(s="dry") + COUNTS_DDL.format(s="dry"))
        cap = None
        if batches:
            started = conn.execute("SELECT 1 FROM main.exec_sends WHERE plan_id = ? LIMIT 1", (plan_id,)).fetchone()
            first = conn.execute("SELECT MIN(batch) FROM main.exec_sends WHERE plan_id = ? AND state = 'planned'"
                                 if started else "SELECT MIN(batch) FROM main.plan_sends WHERE plan_id = ?",
                                 (plan_id,)).fetchone()[0]
            cap = None if first is None else int(first) + int(batches) - 1
        for t in ("exec_plans", "exec_campaigns", "exec_sends"):
            # by name: the workspace may carry columns later migrations added
            cols = ", ".join(r[1] for r in conn.execute(f"PRAGMA dry.table_info({t})")
                             if r[1] in {c[1] for c in conn.execute(f"PRAGMA main.table_info({t})")})
            window = " AND (state != 'planned' OR batch <= ?)" if t == "exec_sends" and cap is not None else ""
            conn.execute(f"INSERT INTO dry.{t} ({cols}) SELECT {cols} FROM main.{t} WHERE plan_id = ?{window}",
                         (plan_id, cap) if window else (plan_id,))
        ledger = cls(conn, plan_id, schema="dry", clock=clock)
        ledger._scratch_path = path
        ledger._cap = cap
        return ledger

    def close_scratch(self) -> None:
        if self.schema == "dry":
            self.conn.execute("DETACH DATABASE dry")
            try:
                os.unlink(self._scratch_path)
            except OSError:
                pass

    def table(self, name: str) -> str:
        """`name` in this ledger's schema (main or dry)."""
        return f"{self.schema}.{name}"

    @property
    def _sends(self) -> str:
        return self.table("exec_sends")

    def _now(self) -> int:
        return int(self.clock())

    # ------------------------------------------------------------------ setup and recovery
    def ensure_rows(self) -> int:
        """Copy the plan's sends into the ledger (once); returns the ledger's row count."""
        now = self._now()
        with transaction(self.conn):
            self.conn.execute(f"INSERT OR IGNORE INTO {self.table('exec_plans')} (plan_id, first_run_at, updated_at) "
                              "VALUES (?, ?, ?)", (self.plan_id, now, now))
            have = self._rows()
            capped = "" if self._cap is None else f" AND batch <= {int(self._cap)}"
            planned = self.conn.execute("SELECT COUNT(*) FROM main.plan_sends WHERE plan_id = ?" + capped,
                                        (self.plan_id,)).fetchone()[0]
            if have < planned:
                self.conn.execute(
                    f"INSERT OR IGNORE INTO {self._sends} (plan_id, send_id, token_id, campaign_key, "
                    "message_key, batch, not_before, updated_at) SELECT plan_id, send_id, token_id, campaign_key, "
                    "message_key, batch, not_before, ? FROM main.plan_sends WHERE plan_id = ?" + capped,
                    (now, self.plan_id))
                have = self._rows()
            if self._cap is not None:
                # planned beyond the copied batches: every plan row the copy does not hold
                self._outside = dict(self.conn.execute(
                    f"SELECT p.campaign_key, COUNT(*) FROM main.plan_sends p WHERE p.plan_id = ? "
                    f"AND p.batch > {int(self._cap)} AND NOT EXISTS (SELECT 1 FROM {self._sends} d "
                    "WHERE d.plan_id = p.plan_id AND d.send_id = p.send_id) GROUP BY p.campaign_key",
                    (self.plan_id,)).fetchall())
                have += sum(self._outside.values())
        return have

    def settle(self) -> int:
        """Apply the stored receipts to this plan's unsettled rows (workspace ledger only)."""
        if self.schema != "main":
            return 0
        with transaction(self.conn):
            return settle_from_receipts(self.conn, plan_id=self.plan_id, now=self._now())

    def recover(self) -> int:
        """Rows left in flight by a run that died: settled by receipts where they can be, the rest
        -> unknown (their requests may have gone out). Returns how many became unknown."""
        with transaction(self.conn):
            if self.schema == "main":
                settle_from_receipts(self.conn, plan_id=self.plan_id, now=self._now())
            cur = self.conn.execute(
                f"UPDATE {self._sends} SET state = 'unknown', reason = 'interrupted', resend_check = NULL, "
                "updated_at = ? WHERE plan_id = ? AND state = 'in_flight'", (self._now(), self.plan_id))
        return cur.rowcount

    def resend_unknown(self, *, margin: float, named: Iterable[int] = ()) -> ResendDecisions:
        """`--resend-unknown`: unknown rows a receipt would have settled by now go back to planned.

        Call it before `recover()`, so rows this run finds in flight are not among them. Receipts
        are applied first. Then each unknown row is re-sent when a person named it, or when a
        receipt of its campaign newer than its request (+ `margin` seconds of delivery lag) was
        ingested: had Meta taken it, its own echo would be in by now. Every other unknown row is
        kept. The reason per row is written to `resend_check`; the counts are returned. Only echoes
        and deliveries count as "newer" (they follow an acceptance within seconds; reads do not).
        """
        named = sorted({int(n) for n in named})
        now = self._now()
        with transaction(self.conn):
            if self.schema == "main":
                settle_from_receipts(self.conn, plan_id=self.plan_id, now=now)
            if named:
                self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS resend_named (send_id INTEGER PRIMARY KEY)")
                self.conn.execute("DELETE FROM temp.resend_named")
                self.conn.executemany("INSERT OR IGNORE INTO temp.resend_named VALUES (?)", [(n,) for n in named])
                # after the receipts, in this transaction: a named row that is not unknown is refused
                bad = self.conn.execute(
                    f"SELECT n.send_id, s.state, s.reason FROM temp.resend_named n LEFT JOIN {self._sends} s "
                    "ON s.plan_id = ? AND s.send_id = n.send_id WHERE s.state IS NOT 'unknown' "
                    "ORDER BY n.send_id", (self.plan_id,)).fetchall()
                if bad:
                    from migrator.errors import OptionError

                    raise OptionError(resend_refusal(self.plan_id, bad),
                                      hint="nothing was re-sent; --resend names only unknown sends "
                                           "(see `migrator status` and docs/execute.md)")
                is_named = "send_id IN (SELECT send_id FROM temp.resend_named)"
            else:
                is_named = "0"
            # the newest echo or delivery per campaign (not reads: a person reads whenever they like),
            # two indexed MAX lookups per campaign (index exec_receipts_message_time)
            self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS resend_newest (campaign_key TEXT PRIMARY KEY, ts INTEGER)")
            self.conn.execute("DELETE FROM temp.resend_newest")
            if self.schema == "main":
                for key, mid in self.conn.execute("SELECT campaign_key, message_id FROM exec_campaigns "
                                                  "WHERE plan_id = ? AND message_id IS NOT NULL",
                                                  (self.plan_id,)).fetchall():
                    ts = max((self.conn.execute("SELECT MAX(ts_ms) FROM exec_receipts WHERE message_id = ? "
                                                "AND field = ?", (mid, f)).fetchone()[0] or 0)
                             for f in ("echo", "delivery"))
                    self.conn.execute("INSERT INTO temp.resend_newest VALUES (?, ?)", (key, ts))
            newest = "(SELECT ts FROM temp.resend_newest n WHERE n.campaign_key = s.campaign_key)"
            self.conn.execute(
                f"UPDATE {self._sends} AS s SET resend_check = CASE "
                f"WHEN {is_named} THEN ? "
                f"WHEN (COALESCE(s.claimed_at, s.updated_at) + ?) * 1000 < {newest} THEN ? ELSE ? END "
                "WHERE s.plan_id = ? AND s.state = 'unknown'",
                (RESEND_NAMED, float(margin), RESEND_RECEIPTS_NEWER, KEEP_NO_NEWER_RECEIPT, self.plan_id))
            resent: dict[str, int] = {}
            kept: dict[str, int] = {}
            for check, n in self.conn.execute(
                    f"SELECT resend_check, COUNT(*) FROM {self._sends} WHERE plan_id = ? AND state = 'unknown' "
                    "GROUP BY resend_check", (self.plan_id,)):
                (resent if check.startswith("resent:") else kept)[check] = n
            self.conn.execute(
                f"UPDATE {self._sends} SET state = 'planned', reason = resend_check, updated_at = ? "
                "WHERE plan_id = ? AND state = 'unknown' AND resend_check LIKE 'resent:%'", (now, self.plan_id))
        return ResendDecisions(resent=resent, kept=kept)

    def retry_failed(self, reason: str | None = None) -> int:
        """`--retry-failed [REASON]`: rows failed by a transient cause go back to planned, attempts reset."""
        reasons = TRANSIENT_FAILURES if reason in (None, "", "transient") else (reason,)
        bad = [r for r in reasons if r not in TRANSIENT_FAILURES]
        if bad:
            from migrator.errors import MigratorError

            raise MigratorError(f"--retry-failed {bad[0]}: not a transient failure reason",
                             hint="transient reasons: " + ", ".join(TRANSIENT_FAILURES)
                             + "; other failures need a new plan")
        marks = ",".join("?" * len(reasons))
        now = self._now()
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self._sends} SET state = 'planned', reason = 'retry_failed:' || reason, attempts = 0, "
                f"not_before = MIN(not_before, ?), updated_at = ? WHERE plan_id = ? AND state = 'failed' "
                f"AND reason IN ({marks})", (now, now, self.plan_id, *reasons))
            if self.schema == "main":
                settle_from_receipts(self.conn, plan_id=self.plan_id, now=now)
        return cur.rowcount

    # ------------------------------------------------------------------ the hot path
    def _claimable_sql(self) -> str:
        """The claim's candidate rows: the one place a sendability predicate joins in."""
        p = self.sendable
        return (f"SELECT e.send_id FROM {self._sends} e {p.join} "
                "WHERE e.plan_id = ? AND e.state = 'planned' AND e.campaign_key = ? AND e.batch <= ? "
                f"AND e.not_before <= ? {('AND (' + p.where + ')') if p.where else ''} "
                "ORDER BY e.batch, e.send_id LIMIT ?")

    def claim(self, campaign_key: str, limit: int, *, now: float, max_batch: int) -> list[Claimed]:
        """Mark up to `limit` due planned rows of a campaign in_flight and return exactly those.

        Under the same write lock, `self.screen` (execute/sendable.py) first moves the due rows that
        must not go now (stopped token, outside the recipient's window, person cadence) out of the
        way; then one UPDATE ... RETURNING takes the rows: a row another executor took a moment
        earlier is no longer `planned` and is not returned, so it is never sent twice.

        The UPDATE finds its rows by primary key (`+state` keeps SQLite from walking every planned
        row of the plan through `exec_sends_due` to test `send_id IN (...)`): a claim costs the
        same on a 4.9M-row ledger as on a small one (tests/test_execute_claim_scale.py).
        """
        t = int(now)
        args = (self.plan_id, *self.sendable.join_params(t), self.plan_id, campaign_key, max_batch, t,
                *self.sendable.where_params(t))
        # a read first, outside any transaction: most calls find nothing due, and a write
        # transaction per campaign and loop would cost more than the sends (the UPDATE decides)
        if self.conn.execute(self._claimable_sql(), (*args[1:], 1)).fetchone() is None:
            return []
        with transaction(self.conn):
            if self.screen is not None:
                self.screen.settle(self.conn, campaign_key, now=now, max_batch=max_batch, limit=limit)
            rows = self.conn.execute(
                f"UPDATE {self._sends} SET state = 'in_flight', claimed_at = ?, updated_at = ? "
                f"WHERE plan_id = ? AND +state = 'planned' AND send_id IN ({self._claimable_sql()}) "
                "RETURNING send_id, token_id, campaign_key, message_key, batch, attempts",
                (t, t, *args, limit)).fetchall()
            if not rows:
                return []
            ids = sorted({r[1] for r in rows})
            tokens = dict(self.conn.execute(
                f"SELECT id, token FROM main.tokens WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall())
        rows.sort(key=lambda r: (r[4], r[0]))
        return [Claimed(r[0], r[1], tokens[r[1]], r[2], r[3], r[4], r[5]) for r in rows]

    def record(self, results: Iterable[Result], *, extra=None) -> int:
        """Write a group of results in one transaction; `extra(conn)` runs in it too (heartbeat).

        Only legal transitions happen: a claimed (`in_flight`) row takes its result; an `unknown`
        row (recovered by another run meanwhile) takes only a `sent` answer. A `sent` row is never
        moved. What Meta said about a token (recipient never) goes to `mm_feedback` whatever the
        row's state. Returns how many rows moved.
        """
        results = list(results)
        now = self._now()
        with transaction(self.conn):
            sql = (f"UPDATE {self._sends} SET state = ?, reason = ?, error_code = ?, error = ?, "
                   "tracking_id = COALESCE(?, tracking_id), attempts = attempts + ?, updated_at = ?, "
                   "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, "
                   "not_before = COALESCE(?, not_before), mm_state = COALESCE(?, mm_state) "
                   "WHERE plan_id = ? AND send_id = ? AND (state = 'in_flight' OR (? = 'sent' AND state = 'unknown'))")
            moved = self.conn.executemany(sql, [
                (r.state, r.reason, r.error_code, r.error, r.tracking_id, int(r.attempted), now, r.state, now,
                 r.not_before, r.mm_state, self.plan_id, r.send_id, r.state) for r in results]).rowcount
            learned = [r for r in results if r.mm_state]
            if learned and self.schema == "main":
                self.conn.executemany(
                    "INSERT INTO mm_feedback (token_id, state, code, subcode, class, seen_at, plan_id, send_id) "
                    "SELECT token_id, ?, ?, ?, ?, ?, plan_id, send_id FROM exec_sends WHERE plan_id = ? AND send_id = ? "
                    "ON CONFLICT (token_id) DO UPDATE SET state = excluded.state, code = excluded.code, "
                    "subcode = excluded.subcode, class = excluded.class, seen_at = excluded.seen_at, "
                    "plan_id = excluded.plan_id, send_id = excluded.send_id WHERE excluded.seen_at >= seen_at",
                    [(r.mm_state, r.error_code, r.subcode, r.error_class, now, self.plan_id, r.send_id)
                     for r in learned])
            if extra is not None:
                extra(self.conn)
        return moved

    def close_campaign(self, campaign_key: str, state: str, reason: str, error: str | None = None,
                       code: int | None = None) -> int:
        """Every still-planned row of a campaign -> `state` (skipped | failed) with the reason."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self._sends} SET state = ?, reason = ?, error = ?, error_code = ?, "
                "updated_at = ? WHERE plan_id = ? AND campaign_key = ? AND state = 'planned'",
                (state, reason, error, code, self._now(), self.plan_id, campaign_key))
        return cur.rowcount

    def close_message(self, message_key: str, reason: str, error: str | None, code: int | None) -> int:
        """A message Meta refuses as written: its remaining planned rows fail with the error."""
        with transaction(self.conn):
            cur = self.conn.execute(
                f"UPDATE {self._sends} SET state = 'failed', reason = ?, error = ?, error_code = ?, "
                "updated_at = ? WHERE plan_id = ? AND message_key = ? AND state = 'planned'",
                (reason, error, code, self._now(), self.plan_id, message_key))
        return cur.rowcount

    # ------------------------------------------------------------------ questions
    def first_open_batch(self, campaign_keys: Iterable[str]) -> int | None:
        out = None
        for k in campaign_keys:
            b = self.conn.execute(f"SELECT MIN(batch) FROM {self._sends} WHERE plan_id = ? "
                                  "AND state = 'planned' AND campaign_key = ?", (self.plan_id, k)).fetchone()[0]
            if b is not None and (out is None or b < out):
                out = b
        return out

    def next_due(self, campaign_key: str, max_batch: int) -> int | None:
        """Earliest not_before of the campaign's planned rows within the batch limit."""
        return self.conn.execute(
            f"SELECT MIN(not_before) FROM {self._sends} WHERE plan_id = ? AND state = 'planned' "
            "AND campaign_key = ? AND batch <= ?", (self.plan_id, campaign_key, max_batch)).fetchone()[0]

    def _rows(self) -> int:
        """Rows of this plan in the ledger (from the counters the triggers keep, not a scan)."""
        return int(self.conn.execute(f"SELECT TOTAL(n) FROM {self.table('exec_send_counts')} WHERE plan_id = ?",
                                     (self.plan_id,)).fetchone()[0])

    def open_count(self, campaign_key: str, max_batch: int | None = None) -> int:
        sql = (f"SELECT TOTAL(n) FROM {self.table('exec_send_counts')} WHERE plan_id = ? AND state = 'planned' "
               "AND campaign_key = ?")
        args: list = [self.plan_id, campaign_key]
        if max_batch is not None:
            sql += " AND batch <= ?"
            args.append(max_batch)
        outside = self._outside.get(campaign_key, 0) if max_batch is None or max_batch > (self._cap or 0) else 0
        return int(self.conn.execute(sql, args).fetchone()[0]) + outside

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for state, n in self.conn.execute(f"SELECT state, TOTAL(n) FROM {self.table('exec_send_counts')} "
                                          "WHERE plan_id = ? GROUP BY state", (self.plan_id,)):
            out[state] = int(n)
        out["planned"] += sum(self._outside.values())     # a capped dry-run copy: rows it did not copy
        return out

    def reasons(self) -> dict[str, int]:
        """Counts of skipped/failed/unknown reasons (for the summary)."""
        return {f"{st}:{r}": n for st, r, n in self.conn.execute(
            f"SELECT state, reason, COUNT(*) FROM {self._sends} WHERE plan_id = ? "
            "AND state IN ('skipped', 'failed', 'unknown') GROUP BY state, reason ORDER BY 3 DESC",
            (self.plan_id,))}

    def set_status(self, status: str) -> None:
        with transaction(self.conn):
            self.conn.execute(f"UPDATE {self.table('exec_plans')} SET status = ?, updated_at = ? WHERE plan_id = ?",
                              (status, self._now(), self.plan_id))


def to_send(conn: sqlite3.Connection, plan_id: str, planned_sends: int) -> int:
    """Sends of a plan that remain to send (before its first run: every planned send)."""
    if conn.execute("SELECT 1 FROM exec_plans WHERE plan_id = ?", (plan_id,)).fetchone() is None:
        return planned_sends
    return int(conn.execute("SELECT TOTAL(n) FROM exec_send_counts WHERE plan_id = ? AND state = 'planned'",
                            (plan_id,)).fetchone()[0])
