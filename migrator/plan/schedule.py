"""Scheduling, pass 2 of the planner: number the sends, cut batches, apply budgets and ends.

Input: temp table `_plan_ord` (one row per send in (not_before, token_id) order, filled by
`plan.build`), the decided campaigns and messages, the send windows. Output: `plan_sends`,
`plan_excluded` (over budget, after the campaign's end), each campaign's and message's
figures, and the batches. Batches hold `batch_size` sends, at most `batches_per_day` start on
one UTC day (`BatchDays`); a later batch moves its sends to the next day's window.
When no budget or end binds, this is set-based SQL (`Scheduler.fast`); otherwise a sequential
pass over the sorted rows (`Scheduler.slow`); both give the same plan when nothing binds.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any

from migrator.plan.campaigns import CampaignState
from migrator.plan.windows import Windows
from migrator.timeparse import DAY

CHUNK = 20_000


def day_str(day: int) -> str:
    """A UTC day number as YYYY-MM-DD."""
    return datetime.fromtimestamp(day * DAY, timezone.utc).date().isoformat()


class BatchDays:
    """The UTC day each batch starts on: its first send's day, at most `per_day` batches a day.

    `peek(first_not_before)` says the day the next batch would get; `take(day)` records that it
    did start then (a batch whose first row the budget excludes does not start).
    """

    def __init__(self, per_day: int):
        self.per_day = per_day
        self.day = -1          # day of the latest batch (-1: none yet)
        self.on_day = 0        # batches started on that day

    def peek(self, first_not_before: int) -> int:
        d = first_not_before // DAY
        if self.day < 0 or d > self.day:
            return d
        return self.day if self.on_day < self.per_day else self.day + 1

    def take(self, day: int) -> int:
        self.on_day = self.on_day + 1 if day == self.day else 1
        self.day = day
        return day


def batch_days(first_not_befores: list[int], per_day: int) -> list[int]:
    """UTC day of each batch from its first send (every batch starts)."""
    days = BatchDays(per_day)
    return [days.take(days.peek(not_before)) for not_before in first_not_befores]


def add_windows(conn: sqlite3.Connection, window: Windows, zone_names: list[str], lo: int, hi: int) -> None:
    """Make temp._plan_windows cover every zone's windows from `lo` to past `hi`."""
    rows = []
    for z, name in enumerate(zone_names):
        for o, c in window.windows(name, lo, hi):
            rows.append((z, c, o))
    conn.executemany("INSERT OR IGNORE INTO _plan_windows VALUES (?,?,?)", rows)


def exclude(conn: sqlite3.Connection, rows: list[tuple], counts: dict[str, int]) -> None:
    """Store (plan_id, token_id, reason, campaign_key) rows and count them by reason; empties `rows`."""
    conn.executemany("INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) "
                     "VALUES (?,?,?,?)", rows)
    for r in rows:
        counts[r[2]] = counts.get(r[2], 0) + 1
    rows.clear()


class Scheduler:
    """Pass 2 over `_plan_ord`; afterwards `sends`, `batches` (dicts of PlanBatch fields), and
    the campaigns' and messages' counters are set, `excluded` counts what it left out."""

    def __init__(self, conn: sqlite3.Connection, plan_id: str, schedule, campaigns: list[CampaignState],
                 messages: list[dict[str, Any]], window: Windows, zone_names: list[str],
                 excluded: dict[str, int], counts: list[int] | None = None):
        """`counts`, when the caller knows them: rows per campaign in `_plan_ord`, none of them
        at or after its campaign's end (`plan.build` removed those); saves `fast` a grouped scan."""
        self.conn, self.plan_id = conn, plan_id
        self.counts = counts
        self.batch_size, self.per_day = schedule.batch_size, schedule.batches_per_day
        self.campaigns, self.messages = campaigns, messages
        self.window, self.zone_names, self.excluded = window, zone_names, excluded
        self.batches: list[dict[str, Any]] = []
        self.sends = 0

    def run(self) -> None:
        """Set-based unless a budget or end binds."""
        if not self.fast():
            self.slow()

    def fast(self) -> bool:
        """All in SQL when no budget or campaign end binds (checked after batching).

        Returns False, with nothing written, when the sequential pass is needed.
        """
        conn, size, pid = self.conn, self.batch_size, self.plan_id
        campaigns = self.campaigns
        # cheap early exit: a lifetime budget that binds, or a send already past its end
        if self.counts is None:
            per_campaign = conn.execute("SELECT c, COUNT(*), MAX(not_before) FROM _plan_ord GROUP BY c").fetchall()
        else:
            per_campaign = [(c, k, -1) for c, k in enumerate(self.counts) if k]
        for c, k, hi in per_campaign:
            kind, cap = campaigns[c].capacity()
            end = campaigns[c].end_time
            if (kind == "lifetime" and cap is not None and k > cap) or (end is not None and hi >= end):
                return False
        n = conn.execute("SELECT MAX(send_id) FROM _plan_ord").fetchone()[0] or 0
        starts = list(range(1, n + 1, size))
        if len(starts) <= 10_000:
            first_not_befores = [conn.execute("SELECT not_before FROM _plan_ord WHERE send_id = ?", (k,)).fetchone()[0]
                         for k in starts]
        else:
            first_not_befores = [r[0] for r in conn.execute(
                "SELECT not_before FROM _plan_ord WHERE (send_id - 1) % ? = 0 ORDER BY send_id", (size,))]
        days = batch_days(first_not_befores, self.per_day)
        pushed = [(k, d * DAY) for k, not_before, d in zip(starts, first_not_befores, days) if d * DAY > not_before]
        if pushed:
            add_windows(conn, self.window, self.zone_names, pushed[0][1], days[-1] * DAY + DAY)
        for k, start in pushed:
            conn.execute(
                "UPDATE _plan_ord SET not_before = (SELECT MAX(w.open, :s) FROM _plan_windows w "
                " WHERE w.z = _plan_ord.z AND w.close > :s ORDER BY w.close LIMIT 1) "
                "WHERE send_id BETWEEN :a AND :b AND not_before < :s",
                {"s": start, "a": k, "b": k + size - 1})
        # per campaign x message x day: budgets, ends and the figures, in one grouped scan
        stats = conn.execute(f"SELECT c, m, not_before / {DAY} AS d, COUNT(*), MIN(not_before),"
                             " MAX(not_before) FROM _plan_ord GROUP BY c, m, d").fetchall()
        per_c: dict[int, int] = {}
        per_cd: dict[tuple[int, int], int] = {}
        for c, m, d, k, lo, hi in stats:
            per_c[c] = per_c.get(c, 0) + k
            per_cd[(c, d)] = per_cd.get((c, d), 0) + k
            end = campaigns[c].end_time
            if end is not None and hi >= end:
                return False
        for c, campaign in enumerate(campaigns):
            kind, cap = campaign.capacity()
            if cap is None:
                continue
            if kind == "lifetime" and per_c.get(c, 0) > cap:
                return False
        for (c, d), k in per_cd.items():
            kind, cap = campaigns[c].capacity()
            if kind == "daily" and cap is not None and k > cap:
                return False
        conn.execute(
            "INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
            " not_before) SELECT ?, send_id, token_id, 'c' || (c + 1), 'm' || (m + 1),"
            " (send_id - 1) / ? + 1, not_before FROM _plan_ord ORDER BY send_id", (pid, size))
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        msg = [0] * len(self.messages)
        for c, m, d, k, lo, hi in stats:
            first[c] = lo if c not in first else min(first[c], lo)
            last[c] = hi if c not in last else max(last[c], hi)
            msg[m] += k
        for i, campaign in enumerate(campaigns):
            campaign.sends = per_c.get(i, 0)
            campaign.first, campaign.last = first.get(i), last.get(i)
        for mrec, k in zip(self.messages, msg):
            mrec["sends"] = k
        mins = conn.execute("SELECT (send_id - 1) / ? AS b, MIN(not_before) FROM _plan_ord GROUP BY b "
                            "ORDER BY b", (size,)).fetchall()
        self.batches = [{"batch": b + 1, "day": day_str(days[b]), "not_before": mn,
                         "first_send_id": starts[b], "last_send_id": min(starts[b] + size - 1, n),
                         "sends": min(starts[b] + size - 1, n) - starts[b] + 1} for b, mn in mins]
        self.sends = n
        return True

    def slow(self) -> None:
        """The sequential pass: needed when a budget or campaign end excludes or moves sends.

        Python decides, row by row in send order (the budgets and the batch days depend on
        what was kept before); SQLite writes. Each chunk's decisions go to SQLite as two JSON
        arrays of integers read with `json_each` in one INSERT ... SELECT each, instead of a
        7-column tuple per send bound through executemany (3.5 s of 4 s at 800,000 sends):
        `keep`, in new send order, `(ord << 32) | k` (ord: the row's `_plan_ord.send_id`; k: 0
        when its not_before is the one `pass_assign` gave it, else the index in
        `_plan_pushed` of the opening it was moved to); `drop`, `(ord << 1) | 1` when after the
        campaign's end, `ord << 1` when over budget. Token, campaign and message come from
        `_plan_ord` by its key.
        """
        conn, campaigns = self.conn, self.campaigns
        size = self.batch_size
        next_open = self.window.next_open
        znames = self.zone_names
        # the day-aligned instants rows are pushed to repeat for every row of a zone: each
        # (zone, instant) is looked up in the window once (every instant here is > 0)
        opening: dict[tuple[int, int], int] = {}

        def open_at(z: int, t: int) -> int:
            opening[z, t] = at = next_open(znames[z], t)
            return at

        caps = [c.capacity() for c in campaigns]
        # 0: no limit, 1: lifetime budget (total), 2: daily budget (per UTC day)
        kind = [0 if cap is None else (1 if k == "lifetime" else 2) for k, cap in caps]
        capn = [cap for _, cap in caps]
        ends = [c.end_time for c in campaigns]
        msg_sends = [0] * len(self.messages)
        used = [0] * len(campaigns)
        cday = [-1] * len(campaigns)      # daily budget cursor per campaign (UTC day number)
        ccount = [0] * len(campaigns)
        unreachable = [0] * len(campaigns)
        first = [0] * len(campaigns)
        last = [-1] * len(campaigns)
        cur = conn.execute("SELECT first_not_before, c, m, z FROM _plan_ord ORDER BY send_id")
        kept = 0
        batch_day_rule = BatchDays(self.per_day)
        bno = 0              # current batch number
        bmin = 0             # its earliest not_before
        bfirst = 0
        batches: list[tuple] = []
        keep: list[int] = []
        drop: list[int] = []
        pushed: dict[int, int] = {}       # a not_before rows were moved to -> its index (1, 2, ...)
        new_pushed: list[tuple[int, int]] = []
        conn.execute("CREATE TEMP TABLE _plan_pushed (i INTEGER PRIMARY KEY, at INTEGER NOT NULL)")
        conn.execute("CREATE TEMP TABLE _plan_dropped (v INTEGER NOT NULL)")
        written = 0          # sends written so far
        over_budget = after_end = 0
        ord_id = 0           # the row's send_id in _plan_ord (1, 2, ... in the order read)
        batch_day_start = 0
        while True:
            rows = cur.fetchmany(CHUNK)
            if not rows:
                break
            for not_before, ci, mi, z in rows:
                ord_id += 1
                assigned = not_before
                opens = kept % size == 0
                if opens:
                    batch_day = batch_day_rule.peek(not_before)
                    if not_before < batch_day * DAY:
                        not_before = opening.get((z, batch_day * DAY)) or open_at(z, batch_day * DAY)
                elif not_before < batch_day_start:
                    not_before = opening.get((z, batch_day_start)) or open_at(z, batch_day_start)
                lim = kind[ci]
                if lim == 1:  # lifetime: a total number of messages
                    if used[ci] >= capn[ci]:
                        drop.append(ord_id << 1)
                        unreachable[ci] += 1
                        continue
                elif lim == 2:  # daily: per UTC day, overflow to the next day's window
                    d = not_before // DAY
                    cd = cday[ci]
                    if d <= cd:  # the campaign's current day (earlier rows were pushed to it)
                        d = cd + 1 if ccount[ci] >= capn[ci] else cd
                        if d > not_before // DAY:
                            not_before = opening.get((z, d * DAY)) or open_at(z, d * DAY)
                    end = ends[ci]
                    if capn[ci] == 0 or (end is not None and not_before >= end):
                        drop.append(ord_id << 1)
                        unreachable[ci] += 1
                        continue
                    if d != cd:
                        cday[ci] = d
                        ccount[ci] = 1
                    else:
                        ccount[ci] += 1
                end = ends[ci]
                if end is not None and not_before >= end:
                    drop.append(ord_id << 1 | 1)
                    continue
                if not used[ci] or not_before < first[ci]:
                    first[ci] = not_before
                if not_before > last[ci]:
                    last[ci] = not_before
                used[ci] += 1
                kept += 1
                if opens:
                    if bno:
                        batches.append((bno, batch_day_rule.day, bmin, bfirst, kept - 1))
                    batch_day_rule.take(batch_day)
                    batch_day_start = batch_day * DAY
                    bno += 1
                    bmin = not_before
                    bfirst = kept
                elif not_before < bmin:
                    bmin = not_before
                msg_sends[mi] += 1
                if not_before == assigned:
                    keep.append(ord_id << 32)
                else:
                    k = pushed.get(not_before)
                    if k is None:
                        k = pushed[not_before] = len(pushed) + 1
                        new_pushed.append((k, not_before))
                    keep.append(ord_id << 32 | k)
            if new_pushed:
                conn.executemany("INSERT INTO _plan_pushed VALUES (?, ?)", new_pushed)
                new_pushed.clear()
            written = self._write_kept(keep, written)
            if drop:
                n_end = sum(v & 1 for v in drop)
                after_end += n_end
                over_budget += len(drop) - n_end
                conn.execute("INSERT INTO _plan_dropped SELECT value FROM json_each(?)", (json.dumps(drop),))
                drop.clear()
        self._write_dropped()
        conn.execute("DROP TABLE _plan_pushed")
        conn.execute("DROP TABLE _plan_dropped")
        for reason, n in (("over_budget", over_budget), ("after_campaign_end", after_end)):
            if n:
                self.excluded[reason] = self.excluded.get(reason, 0) + n
        if bno:
            batches.append((bno, batch_day_rule.day, bmin, bfirst, kept))
        self.batches = [{"batch": b, "day": day_str(d), "not_before": mn, "first_send_id": f,
                         "last_send_id": la, "sends": la - f + 1} for b, d, mn, f, la in batches]
        for m, n in zip(self.messages, msg_sends):
            m["sends"] = n
        for i, c in enumerate(campaigns):
            c.sends, c.unreachable = used[i], unreachable[i]
            c.first, c.last = (first[i], last[i]) if used[i] else (None, None)
        self.sends = kept

    def _write_kept(self, keep: list[int], written: int) -> int:
        """Insert the sends `keep` encodes (see `slow`) as send_ids written+1, ...; empties it."""
        if not keep:
            return written
        self.conn.execute(
            "INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
            " not_before) SELECT :pid, :base + j.key, o.token_id, 'c' || (o.c + 1), 'm' || (o.m + 1),"
            " (:base + j.key - 1) / :size + 1, CASE j.value & 4294967295 WHEN 0 THEN o.first_not_before"
            " ELSE (SELECT p.at FROM _plan_pushed p WHERE p.i = j.value & 4294967295) END"
            " FROM json_each(:keep) j CROSS JOIN _plan_ord o ON o.send_id = j.value >> 32",
            {"pid": self.plan_id, "base": written + 1, "size": self.batch_size, "keep": json.dumps(keep)})
        written += len(keep)
        keep.clear()
        return written

    def _write_dropped(self) -> None:
        """Insert the left-out rows `_plan_dropped` holds (`drop` in `slow`) into plan_excluded,
        in token order: plan_excluded is keyed by token, and rows inserted in send order landed
        all over its B-tree (0.9 s for 200,000 rows; sorted first, a third of that)."""
        self.conn.execute(
            "INSERT INTO plan_excluded (plan_id, token_id, reason, campaign_key) SELECT ?, o.token_id,"
            " CASE d.v & 1 WHEN 1 THEN 'after_campaign_end' ELSE 'over_budget' END, 'c' || (o.c + 1)"
            " FROM _plan_dropped d CROSS JOIN _plan_ord o ON o.send_id = d.v >> 1 ORDER BY o.token_id",
            (self.plan_id,))
