"""The run loop: a producer claims due rows, workers send them, idle time waits for the next due send.

Claimed rows are committed in_flight before their requests leave, so the producer keeps only
what goes out in the next moment claimed (a kill leaves few rows in doubt). `Run` adds the loop
to `send.Sender`'s per-send handling; the engine starts the workers and the committer around it.
"""

from __future__ import annotations

import asyncio

from migrator.execute.ledger import Claimed
from migrator.execute.send import Sender


class Run(Sender):
    """A run of one plan: `Sender`'s state and answers, plus the producer, workers and waits."""

    async def worker(self, queue: asyncio.Queue) -> None:
        """Take rows one at a time, never more of them in flight than the adaptive limit allows (Gate)."""
        while True:
            await self.gate.enter()
            try:
                row = await queue.get()
                if row is None:
                    return
                self.in_flight += 1
                try:
                    await self.send(row)
                finally:
                    self.in_flight -= 1
                    self.changed.set()
            finally:
                await self.gate.leave()

    def _depth(self) -> int:
        """How many claimed rows to keep queued: two rounds of what may be in flight now."""
        depth = min(self.opts.slice_size, 2 * self.gate.allowed)
        if self.opts.rate:
            depth = max(2, min(depth, int(self.opts.rate * 0.25)))
        return depth

    async def produce(self, queue: asyncio.Queue, max_batch: int) -> None:
        closed_msgs: set[str] = set()
        spins = 0
        # Claimed rows are in_flight: keep only what goes out in the next moment claimed, so a kill
        # leaves few rows in doubt (each claim is one small transaction); the adaptive limit sets it.
        while not self.stop.is_set():
            depth = self._depth()
            now = self.clock()
            for c in self.campaigns.values():
                if c.state == "warming" and c.next_probe_at is not None and now >= c.next_probe_at:
                    c.state = "probing"
                if c.state == "paused" and c.paused_until is not None and now >= c.paused_until:
                    c.state, c.paused_until, c.reason = "ready", None, None
            self._close_new(closed_msgs)
            due_batch = self._due_batch(now, max_batch)
            claimed = 0
            if due_batch is not None:
                self._check_idle()
                for c in self.campaigns.values():
                    if c.state == "ready":
                        room = max(0, depth - queue.qsize())
                        if room and not self._idle(c.key, now, due_batch):
                            rows = self._claim(c.key, room, now, due_batch)
                            for r in rows:
                                queue.put_nowait(r)
                            claimed += len(rows)
                            if len(rows) < room:
                                self._mark_idle(c.key, due_batch)
                    elif c.state == "probing" and not getattr(c, "_probe_out", False) \
                            and not self._idle(c.key, now, due_batch):
                        rows = self._claim(c.key, 1, now, due_batch)
                        if rows:
                            c._probe_out = True  # type: ignore[attr-defined]
                            queue.put_nowait(rows[0])
                            claimed += 1
                        else:
                            self._mark_idle(c.key, due_batch)
            for c in self.campaigns.values():
                if c.state != "probing":
                    c._probe_out = False  # type: ignore[attr-defined]
            if claimed:
                # keep the queue about one slice deep
                while queue.qsize() > depth // 2 and not self.stop.is_set():
                    self.changed.clear()
                    await _wait(self.changed, 0.05)
                continue
            if self.in_flight or queue.qsize():
                self.changed.clear()
                await _wait(self.changed, 0.05)
                continue
            # idle: nothing due right now
            self.flush()
            self.idle.clear()     # the marks save reads while sends flow; after a wait every campaign is asked
            self._close_new(closed_msgs)
            nxt, why = self._next_event(max_batch)
            if nxt is None:
                return
            if not self.opts.wait:
                self._window_note()
                self.summary.outcome = "waiting"
                self.summary.waiting_for, self.summary.next_due_at = why, int(nxt)
                return
            if nxt > now:
                spins = 0
                self._window_note()    # one scan of the planned rows per wait, never per spin
                if self.summary.window_waiting:
                    self.notify(f"{self.summary.window_waiting} sends wait for their recipients' local send "
                                f"window, the first until {_utc(self.summary.window_opens_at)}")
                self.notify(f"waiting {nxt - now:.0f} s for {why}")
                await self._sleep_until(nxt)
            else:   # due but not claimable right now (e.g. a probe just came back): never spin
                spins += 1
                if spins > 3:
                    await _wait_or_sleep(self.stop, self.sleep, 1.0)

    # -------------------------------------------------------------- campaigns with nothing due
    # A claim that returns fewer rows than it asked for leaves none of the campaign's planned rows
    # due (it took or screened every one). Asking again every pass cost a read per campaign and
    # pass (31,000 reads for 20,000 sends over 200 campaigns, most of them finished). The campaign
    # is asked again only when that could have changed: its earliest planned row falls due, the
    # due batch moves, this run releases a row to planned (flush), or another connection commits
    # (SQLite's data_version). The marks only save reads that would find nothing: claims decide.
    def _check_idle(self) -> None:
        if self.idle:
            dv = self._data_version()
            if dv != self.idle_dv:
                self.idle.clear()

    def _idle(self, key: str, now: float, due_batch: int) -> bool:
        mark = self.idle.get(key)
        if mark is None:
            return False
        if mark[0] == due_batch and (mark[1] is None or now < mark[1]):
            return True
        del self.idle[key]
        return False

    def _mark_idle(self, key: str, due_batch: int) -> None:
        if not self.idle:
            self.idle_dv = self._data_version()
        self.idle[key] = (due_batch, self.ledger.next_due(key, due_batch))

    def _claim(self, key: str, room: int, now: float, due_batch: int) -> list[Claimed]:
        dv = self._data_version() if self.screen is not None else 0
        rows = self.ledger.claim(key, room, now=now, max_batch=due_batch)
        if self.screen is not None:
            for r in rows:
                self.claimed_dv[r.send_id] = dv
            n = self.screen.drain()
            if n:
                self.summary.skipped += n
                self.progress(n)
        return rows

    def _window_note(self) -> None:
        if self.screen is not None and self.screen.windows is not None:
            self.summary.window_waiting, self.summary.window_opens_at = self.screen.waiting(self.ledger.conn)

    def _close_new(self, closed_msgs: set[str]) -> None:
        for c in self.campaigns.values():
            if c.state == "stopped" and not getattr(c, "_closed", False):
                self.flush()
                n = self.ledger.close_campaign(c.key, "skipped", c.reason or "campaign_stopped", c.error)
                self.summary.skipped += n
                self.progress(n)
                c._closed = True  # type: ignore[attr-defined]
            for mk, text in c.stopped_messages.items():
                if mk not in closed_msgs:
                    closed_msgs.add(mk)
                    self.flush()
                    n = self.ledger.close_message(mk, "fix_payload", text, None)
                    self.summary.failed += n
                    self.progress(n)

    def _due_batch(self, now: float, max_batch: int) -> int | None:
        due = None
        for b in self.plan.batches:
            if b.batch > max_batch:
                break
            if b.not_before <= now:
                due = b.batch
        # rows of a batch may have been rescheduled: claims also check each row's not_before
        return due if due is not None else None

    def _next_event(self, max_batch: int) -> tuple[float | None, str]:
        best: tuple[float | None, str] = (None, "")

        def consider(t, why):
            nonlocal best
            if t is not None and (best[0] is None or t < best[0]):
                best = (t, why)

        for c in self.campaigns.values():
            if c.state in ("ready", "probing", "warming", "paused"):
                t = self.ledger.next_due(c.key, max_batch)
                if t is None:
                    continue
                if c.state == "warming":
                    consider(max(t, c.next_probe_at or t), f"warm-up of campaign {c.key} (error {c.warmup_code})")
                elif c.state == "paused":
                    what = ("its ad account's next budget day" if c.reason == "daily_budget_reached"
                            else f"a pause ({c.reason})")
                    consider(max(t, c.paused_until or t), f"campaign {c.key}: {what}")
                else:
                    consider(float(t), "the next scheduled send")
        return best

    async def _sleep_until(self, t: float) -> None:
        while not self.stop.is_set():
            left = t - self.clock()
            if left <= 0:
                return
            await _wait_or_sleep(self.stop, self.sleep, min(left, 30.0))
            if self.lock is not None:
                self.flush()


def _utc(t: int | None) -> str:
    from datetime import datetime, timezone

    return "-" if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")



async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        pass


async def _wait_or_sleep(stop: asyncio.Event, sleep, seconds: float) -> None:
    """Sleep via the injected sleep, but wake up at once when a stop is requested."""
    t = asyncio.ensure_future(sleep(seconds))
    s = asyncio.ensure_future(stop.wait())
    done, pending = await asyncio.wait({t, s}, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
