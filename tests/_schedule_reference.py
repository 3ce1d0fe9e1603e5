"""The planner's sequential scheduling pass as it was before it wrote through json_each (issue 19.5).

An oracle for tests/test_plan_schedule_equivalence.py: the same loop, writing every row with
executemany. `ReferenceScheduler.slow` must keep giving the plan `Scheduler.slow` gives, row for row.
Do not "improve" this file: it is the old behaviour the new pass is held to.
"""

from __future__ import annotations

from migrator.plan.schedule import CHUNK, BatchDays, Scheduler, day_str, exclude
from migrator.timeparse import DAY


class ReferenceScheduler(Scheduler):
    """`Scheduler` whose sequential pass is the pre-19.5 one, and which always uses it."""

    def run(self) -> None:
        self.slow()

    def slow(self) -> None:
        """The sequential pass: needed when a budget or campaign end excludes or moves sends."""
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
        cur = conn.execute("SELECT first_not_before, token_id, c, m, z FROM _plan_ord ORDER BY send_id")
        kept = 0
        batch_day_rule = BatchDays(self.per_day)
        bno = 0              # current batch number
        bmin = 0             # its earliest not_before
        bfirst = 0
        batches: list[tuple] = []
        out: list[tuple] = []
        excl: list[tuple] = []
        pid = self.plan_id
        keys = [c.key for c in campaigns]
        mkeys = [m["key"] for m in self.messages]
        ins = ("INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
               " not_before) VALUES (?,?,?,?,?,?,?)")
        batch_day_start = 0
        while True:
            rows = cur.fetchmany(CHUNK)
            if not rows:
                break
            for not_before, token_id, ci, mi, z in rows:
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
                        excl.append((pid, token_id, "over_budget", keys[ci]))
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
                        excl.append((pid, token_id, "over_budget", keys[ci]))
                        unreachable[ci] += 1
                        continue
                    if d != cd:
                        cday[ci] = d
                        ccount[ci] = 1
                    else:
                        ccount[ci] += 1
                end = ends[ci]
                if end is not None and not_before >= end:
                    excl.append((pid, token_id, "after_campaign_end", keys[ci]))
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
                out.append((pid, kept, token_id, keys[ci], mkeys[mi], bno, not_before))
            conn.executemany(ins, out)
            out.clear()
            if excl:
                exclude(conn, excl, self.excluded)
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
