"""Is a planned send still sendable at the instant it is claimed? (claim-time checks)

A plan is built once, a cutover runs for days: people opt out, Meta teaches us about tokens,
clocks move past send windows. `Screen.settle` runs inside `Ledger.claim`'s write transaction,
just before the rows are marked in_flight, and moves every due row that must not go *now* out
of the claimable set, so the claim itself stays a plain "next due planned rows" statement:

- the token stopped (`tokens.status = 'stopped'`, or a stop webhook in `token_events`, ingested
  at any time, with no later opt-in/resume, whatever a CSV ingested after it says) or Meta said it is opted out
  (`mm_feedback`/`tokens.mm_state`), for this token or for another token of the same person
  (page + PSID: an MM opt-out stops every MM from that Page, per Meta's MM FAQ):
  skipped(`opted_out_during_run`); Meta said invalid /
  expired / wrong region / page mismatch: skipped(`token_<state>`);
- another plan of this workspace already sent an MM message (any message) to the token or to
  another token of the same person, or may have (its row is sent, in flight or unknown):
  skipped(`sent_by_another_plan`). A subscription moves to MM once: a plan made after sends were
  accepted leaves those people out (`already_moved`, `execute/moved.py`), and this is the same
  rule for a plan made while another plan's sends were still to go, so what reaches a person
  never depends on when a plan was made. (It used to match only an identical message body: a
  plan made mid-run from a copied spec with an edited message then billed the people the
  running plan reached.) A failed row of another plan does not count: Meta did not accept it;
- the recipient's local send window (the plan's `schedule.window` in the token's zone) has not
  opened yet: the row waits for it (`not_before` = the opening); it has passed: with
  `--late wait` the row waits for the next window (`window_wait`), with `--late skip` it is
  skipped(`window_missed`); a row that could only go at or after its campaign's end is
  skipped(`window_missed`) at once;
- the same person (same page + PSID) got another MM within the MM cadence (rules
  `mm_cadence_hours`; a sent, in-flight or unknown row of any of the person's tokens in this
  ledger, or another row of the person in the same claim): the row is deferred to when the
  cadence allows (`person_cadence`); the window check then places it. Since another plan's rows
  skip the person outright (above), this holds within one plan's ledger: the planner's one
  token per person (`same_person`) makes it a second guard there.

Holding the write lock while settling and claiming means an opt-out committed by another
connection is either seen by this claim or committed after it. Rows claimed before such a
commit are checked again right before their request leaves (`recheck`, only when SQLite's
`data_version` says another connection wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.plan.windows import Windows

# what Meta's feedback (mm_feedback.state, or the older tokens.mm_state) means at claim time
SKIP_REASON = {"opted_out": "opted_out_during_run", "invalid": "token_invalid", "expired": "token_expired",
               "wrong_region": "token_wrong_region", "page_mismatch": "token_page_mismatch",
               "sent_by_another_plan": "sent_by_another_plan"}
OPTED_OUT = "opted_out_during_run"
WINDOW_MISSED = "window_missed"
WINDOW_WAIT = "window_wait"
PERSON_CADENCE = "person_cadence"
LATE_CHOICES = ("wait", "skip")

_BLOCKING = "('" + "', '".join(k for k in SKIP_REASON if k != "sent_by_another_plan") + "')"


def stopped_sql() -> str:
    """SQL: why the token `t` (joined with mm_feedback `f`) must not be messaged now, or NULL.

    The sendability predicate of a claim is `(<this>) IS NULL`. A logged stop webhook counts
    whenever it was ingested, unless an opt-in or resume of the token is newer: the inventory's
    merge ranks a CSV snapshot as observed at its ingest, but an export's own date is unknown,
    so a snapshot saying `active` ingested after a stop (yesterday's CRM file) must not release
    it at send time. (It used to count only stops ingested since the plan, and that file made
    the person sendable again.) Only Meta's own resume or opt-in does.
    """
    return f"""CASE
        WHEN t.status = 'stopped' THEN 'opted_out'
        WHEN EXISTS (SELECT 1 FROM main.token_events ev WHERE ev.token = t.token AND ev.kind = 'stop'
                     AND NOT EXISTS (SELECT 1 FROM main.token_events r WHERE r.token = ev.token
                                     AND r.kind IN ('optin', 'resume') AND r.ts_ms > ev.ts_ms)) THEN 'opted_out'
        WHEN f.state IN {_BLOCKING} THEN f.state
        WHEN t.mm_state IN {_BLOCKING} THEN t.mm_state
        WHEN t.psid IS NOT NULL AND EXISTS (
             SELECT 1 FROM main.tokens s LEFT JOIN main.mm_feedback sf ON sf.token_id = s.id
             WHERE s.page_id = t.page_id AND s.psid = t.psid AND s.id != t.id
               AND (sf.state = 'opted_out' OR s.mm_state = 'opted_out')) THEN 'opted_out'
        WHEN EXISTS (SELECT 1 FROM main.exec_sends o WHERE o.token_id = t.id
                       AND o.plan_id != :plan AND o.state IN ('sent', 'in_flight', 'unknown'))
          OR (t.psid IS NOT NULL AND EXISTS (
                SELECT 1 FROM main.tokens s JOIN main.exec_sends o ON o.token_id = s.id
                WHERE s.page_id = t.page_id AND s.psid = t.psid AND s.id != t.id
                  AND o.plan_id != :plan AND o.state IN ('sent', 'in_flight', 'unknown')))
             THEN 'sent_by_another_plan'
        END"""


@dataclass
class Screen:
    """Claim-time checks for one run of one plan (built by the engine, used by `Ledger.claim`)."""

    table: str                          # the ledger table, e.g. "main.exec_sends" or "dry.exec_sends"
    plan_id: str
    cadence_seconds: int | None         # None: no person cadence check (dry run)
    windows: Windows | None             # None: no send-window check (dry run, or a plan without one)
    ends: dict[str, int | None] = field(default_factory=dict)   # campaign key -> its end (epoch s)
    late: str = "wait"
    skipped: int = 0                    # rows skipped since the engine last asked (`drain`)

    def __post_init__(self) -> None:
        if self.late not in LATE_CHOICES:
            raise ValueError(f"late must be one of {LATE_CHOICES}, not {self.late!r}")
        self._select = f"""
            SELECT e.send_id, e.batch, e.not_before, t.timezone, t.page_id, t.psid, {stopped_sql()},
                   (SELECT MAX(COALESCE(o.sent_at, o.updated_at)) FROM main.tokens p
                      JOIN {self.table} o ON o.token_id = p.id
                     WHERE t.psid IS NOT NULL AND p.page_id = t.page_id AND p.psid = t.psid
                       AND o.state IN ('sent', 'in_flight', 'unknown')
                       AND NOT (o.plan_id = e.plan_id AND o.send_id = e.send_id))
            FROM {self.table} e JOIN main.tokens t ON t.id = e.token_id
            LEFT JOIN main.mm_feedback f ON f.token_id = e.token_id
            WHERE e.plan_id = :plan AND e.state = 'planned' AND e.campaign_key = :ck AND e.batch <= :mb
              AND e.not_before <= :now AND (e.batch, e.send_id) > (:lb, :ls)
            ORDER BY e.batch, e.send_id LIMIT :limit"""
        self._one = f"""
            SELECT {stopped_sql()} FROM {self.table} e JOIN main.tokens t ON t.id = e.token_id
            LEFT JOIN main.mm_feedback f ON f.token_id = e.token_id
            WHERE e.plan_id = :plan AND e.send_id = :sid"""

    # ------------------------------------------------------------------ the decision (pure)
    def decide(self, *, campaign_key: str, not_before: int, zone: str | None, stopped: str | None,
               person_last: int | None, now: int) -> tuple[str, str | None, int | None]:
        """('ok'|'skip'|'defer', reason, new not_before) for one due row.

        A row that could only go at or after its campaign's end is skipped as `window_missed` now
        rather than waiting for a moment Meta would refuse.
        """
        if stopped:
            return "skip", SKIP_REASON.get(stopped, OPTED_OUT), None
        end = self.ends.get(campaign_key)
        if end is not None and now >= end:      # Meta refuses it (2300000), and it is after the plan's end
            return "skip", WINDOW_MISSED, None
        if self.cadence_seconds and person_last is not None and now < person_last + self.cadence_seconds:
            when = int(person_last + self.cadence_seconds)
            if end is not None and when >= end:
                return "skip", WINDOW_MISSED, None
            return "defer", PERSON_CADENCE, when
        if self.windows is not None:
            z = self.windows.zone(zone)
            opens, closes = self.windows.windows(z, not_before, not_before)[0]
            if now < opens:
                when = opens
            elif now < closes:
                return "ok", None, None
            elif self.late == "skip":     # its window has passed
                return "skip", WINDOW_MISSED, None
            else:
                when = self.windows.next_open(z, now)
                if when == now and (end is None or now < end):    # already inside the next window
                    return "ok", None, None
            if end is not None and when >= end:
                return "skip", WINDOW_MISSED, None
            return "defer", WINDOW_WAIT, when
        return "ok", None, None

    # ------------------------------------------------------------------ inside the claim
    def settle(self, conn, campaign_key: str, *, now: float, max_batch: int, limit: int) -> int:
        """Move every due row that must not go now out of the first `limit` claimable rows.

        Runs in the claim's transaction. Returns how many rows it moved (skipped or deferred).
        """
        now_i = int(now)
        moved = 0
        ok = 0
        last = (-1, -1)
        persons: set[tuple[str, str]] = set()
        while ok < limit:
            rows = conn.execute(self._select, {"plan": self.plan_id, "ck": campaign_key, "mb": max_batch,
                                               "now": now_i, "lb": last[0], "ls": last[1],
                                               "limit": limit}).fetchall()
            if not rows:
                break
            skips, defers = [], []
            for send_id, batch, nb, tz, page, psid, stopped, person_last in rows:
                last = (batch, send_id)
                if not stopped and psid is not None and (page, psid) in persons:
                    person_last = max(person_last or 0, now_i)   # claimed a moment ago in this claim
                verdict, reason, when = self.decide(campaign_key=campaign_key, not_before=nb, zone=tz,
                                                    stopped=stopped, person_last=person_last, now=now_i)
                if verdict == "skip":
                    skips.append((reason, now_i, self.plan_id, send_id))
                elif verdict == "defer":
                    defers.append((max(int(when), now_i + 1), reason, now_i, self.plan_id, send_id))
                else:
                    ok += 1
                    if psid is not None:
                        persons.add((page, psid))
                    if ok >= limit:
                        break
            if skips:
                conn.executemany(f"UPDATE {self.table} SET state = 'skipped', reason = ?, updated_at = ? "
                                 "WHERE plan_id = ? AND send_id = ? AND state = 'planned'", skips)
                self.skipped += len(skips)
            if defers:
                conn.executemany(f"UPDATE {self.table} SET not_before = ?, reason = ?, updated_at = ? "
                                 "WHERE plan_id = ? AND send_id = ? AND state = 'planned'", defers)
            moved += len(skips) + len(defers)
            if len(rows) < limit:
                break
        return moved

    def recheck(self, conn, send_id: int) -> str | None:
        """For a row claimed before another connection committed: the skip reason, or None."""
        row = conn.execute(self._one, {"plan": self.plan_id, "sid": send_id}).fetchone()
        if row is None or row[0] is None:
            return None
        return SKIP_REASON.get(row[0], OPTED_OUT)

    def drain(self) -> int:
        """Rows skipped by the claim since the last call (for the run's counters and progress)."""
        n, self.skipped = self.skipped, 0
        return n

    # ------------------------------------------------------------------ what the run says
    def waiting(self, conn) -> tuple[int, int | None]:
        """(planned rows waiting for their recipient's send window, when the first one opens)."""
        n, first = conn.execute(f"SELECT COUNT(*), MIN(not_before) FROM {self.table} WHERE plan_id = ? "
                                "AND state = 'planned' AND reason = ?", (self.plan_id, WINDOW_WAIT)).fetchone()
        return n, first


__all__ = ["Screen", "stopped_sql", "SKIP_REASON", "OPTED_OUT", "WINDOW_MISSED", "WINDOW_WAIT",
           "PERSON_CADENCE", "LATE_CHOICES"]
