"""Pacing: how many requests may be in flight, a rate limit, and pauses when Meta throttles.

Three things decide when the next send may leave:
- the adaptive in-flight limit (`Aimd`, decided by the pure `aimd_next`): additive increase while
  Meta's answers are clean, multiplicative decrease on a throttle and as the usage headers approach
  100 %, so a run finds the highest rate the account allows without being throttled;
- `--rate` (a fixed ceiling in sends per second), when given;
- pauses: a throttle pauses every send for Meta's own wait (remaining_seconds, the usage headers'
  regain time), a campaign's or a request's own retry only what it concerns (send.py).

Clock and sleep are injected (tests use a virtual clock; nothing sleeps on the wall clock).
Every wait here watches the run's stop event, so Ctrl-C during a long throttle pause stops at
once instead of after the pause. Each new pause is reported through `on_pause` (the
progress line says why and how long) and counted.
Also here: `next_day_start`, the start of an ad account's next day in its own time zone (a daily
budget resets then, not at UTC midnight), and `warmup_poll_delay`, the warm-up probe backoff.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ---------------------------------------------------------------------------------------------- AIMD
# Usage headers (X-App-Usage, X-Ad-Account-Usage, X-Business-Use-Case-Usage: percent of a rolling
# window, Meta throttles at 100; https://developers.facebook.com/docs/graph-api/overview/rate-limiting):
# below USAGE_LOW the limit grows, from USAGE_HIGH on it shrinks while the usage still climbs, in
# between it holds. The usage of a rolling window moves with the difference between what we send now
# and what leaves the window, so holding the limit in the band holds the usage in the band, and the
# rate near USAGE_LOW..USAGE_HIGH % of what the account allows.
USAGE_LOW = 90.0
USAGE_HIGH = 96.0
USAGE_FAST = 50.0            # below this usage the limit doubles per round trip instead of adding one
THROTTLE_DECREASE = 0.5      # a throttling answer: halve
USAGE_DECREASE = 0.85        # the usage at USAGE_HIGH or more and still climbing: a gentler cut


def usage_cut(pct: float) -> float:
    """The factor of a usage cut at `pct` (USAGE_HIGH..100): USAGE_DECREASE, and steeper as the
    headroom left shrinks (at 99 % a quarter, at 99.9 % a fortieth), so that what is in flight when
    the window is nearly full cannot overrun it: a window drained in one lump frees its room in one
    lump, and room that is not yet freed is all that the next requests can use."""
    return max(0.0, min(USAGE_DECREASE, (100.0 - pct) / (100.0 - USAGE_HIGH)))


@dataclass(frozen=True)
class Answer:
    """What one answer from Meta says about the rate (the input of `aimd_next`)."""

    sent_at: float               # when its request left (the clock at acquire)
    now: float                   # when it came back
    throttled: bool = False      # a rate-limit refusal (outcomes.THROTTLE_CODES, HTTP 429) or usage >= 100 %
    usage_pct: float | None = None   # the highest percentage in its usage headers; None: it had none
    in_flight: int = 0           # requests in flight when it came back, itself included


@dataclass(frozen=True)
class Aimd:
    """The adaptive in-flight limit: state in, new state out (`aimd_next`)."""

    limit: float                 # requests allowed in flight (the gate uses floor(limit), at least 1)
    max_limit: int               # --concurrency: never more
    decreased_at: float = -math.inf   # the last decrease: answers to requests sent before it are accounted for
    usage_mark: float | None = None   # the usage % at the last usage decrease, None once below USAGE_HIGH
    decreases: int = 0
    increases: int = 0
    anchor_pct: float | None = None   # usage at the start of the current measuring span
    span: int = 0                # answers with usage since then
    climb: float = 0.0           # net usage % added per answer over the last span (< 0: draining)

    @classmethod
    def start(cls, max_limit: int) -> "Aimd":
        """Start at the configured concurrency: the usage headers of the first answers say if it is too much."""
        m = max(1, int(max_limit))
        return cls(limit=float(m), max_limit=m)

    @property
    def allowed(self) -> int:
        return max(1, min(self.max_limit, int(self.limit)))


def _with(s: Aimd, **changes) -> Aimd:
    """`dataclasses.replace` without its per-call field walk (~10 µs; this runs once per answer):
    a copy of the frozen state with `changes`, no validation to skip (Aimd has no __post_init__)."""
    new = object.__new__(Aimd)
    new.__dict__.update(s.__dict__)
    new.__dict__.update(changes)
    return new


def aimd_next(s: Aimd, a: Answer) -> Aimd:
    """The in-flight limit after one answer. Pure: no clock, no I/O.

    - A throttle halves the limit, once per round trip: only an answer to a request sent after the
      last decrease cuts again (the others were sent under the old limit and are accounted for by
      it; 64 throttled answers of one burst must not take 64 cuts). It never raises the limit.
    - Usage at USAGE_HIGH % or more cuts by USAGE_DECREASE, once per round trip and only while the
      usage still climbs above the level of the last cut (when it stays or falls, the cut worked).
    - USAGE_LOW..USAGE_HIGH: hold.
    - Clean (no throttle, usage below USAGE_LOW or no usage headers): +1/limit per answer, i.e.
      about one more request in flight per round trip, and only while the limit is what holds the
      run back (as many requests in flight as it allows), so an idle run does not inflate it.
    Always 1 <= limit <= max_limit.
    """
    fresh = a.sent_at >= s.decreased_at
    pct = a.usage_pct
    if pct is not None:
        s = _measure_climb(s, pct)
        room = headroom_cap(s, pct)
        if room is not None and s.limit > room and not (a.throttled or pct >= 100.0):
            # what is in flight would overrun the window: down to what the room left allows
            return _with(s, limit=max(1.0, room), decreased_at=a.now, decreases=s.decreases + 1)
    if a.throttled or (pct is not None and pct >= 100.0):
        if not fresh:
            return s
        return _with(s, limit=max(1.0, s.limit * THROTTLE_DECREASE), decreased_at=a.now,
                       usage_mark=pct if pct is not None else s.usage_mark, decreases=s.decreases + 1)
    if pct is not None and pct >= USAGE_HIGH:
        if fresh and (s.usage_mark is None or pct > s.usage_mark):
            return _with(s, limit=max(1.0, s.limit * usage_cut(pct)), decreased_at=a.now, usage_mark=pct,
                           decreases=s.decreases + 1)
        return s
    if s.usage_mark is not None:
        s = _with(s, usage_mark=None)
    draining = pct is not None and s.climb < 0
    if pct is not None and pct >= USAGE_LOW and not draining:
        return s
    if a.in_flight >= s.allowed and s.limit < s.max_limit:
        # far from the top (usage below USAGE_FAST), or while the window drains, one more per answer
        # (double per round trip): room that a rolling window frees is used as it frees, else a
        # window that drained in one lump is refilled late and drains in one lump again
        fast = pct is not None and (pct < USAGE_FAST or draining)
        step = 1.0 if fast else 1.0 / max(1.0, s.limit)
        return _with(s, limit=min(float(s.max_limit), s.limit + step), increases=s.increases + 1)
    return s


def blocked_seconds(usage) -> float:
    """Meta's own "blocked for" figure in the usage headers: X-Business-Use-Case-Usage's
    estimated_time_to_regain_access (minutes), 0 when it gives none.

    A successful answer whose usage reads exactly 100 % without it is a full window, not a block:
    the in-flight limit halves (`aimd_next`), and a refusal that may follow brings its own
    remaining_seconds, which the pause honours. Waiting X-Ad-Account-Usage's reset_time_duration
    instead (the time until the whole window has drained) would empty a rolling window and turn a
    steady rate into bursts and idle gaps."""
    out = 0.0
    for entries in (usage.business or {}).values():
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict):
                try:
                    out = max(out, float(e.get("estimated_time_to_regain_access") or 0) * 60.0)
                except (TypeError, ValueError):
                    pass
    return out


CLIMB_SPAN = 8               # answers per measurement of how fast the usage climbs


def _measure_climb(s: Aimd, pct: float) -> Aimd:
    """How much the usage climbs per answer, net of what leaves the window, over spans of CLIMB_SPAN."""
    if s.anchor_pct is None:
        return _with(s, anchor_pct=pct, span=0)
    n = s.span + 1
    if n < CLIMB_SPAN:
        return _with(s, span=n)
    return _with(s, anchor_pct=pct, span=0, climb=(pct - s.anchor_pct) / n)


def headroom_cap(s: Aimd, pct: float) -> float | None:
    """The most requests that may be in flight when the usage is at `pct` and climbing `s.climb` per
    answer: half the answers that would take it to 100 % (the requests in flight land one round trip
    later, and the next round must fit too). None while it does not climb or is far from the top."""
    if s.climb <= 0 or pct < 50.0:
        return None
    return max(1.0, 0.5 * (100.0 - pct) / s.climb)


class Gate:
    """The adaptive limit applied twice: at most `Aimd.allowed` workers hold a claimed row
    (`enter`/`leave`: few rows claimed, so a kill leaves few in doubt), and at most that many
    requests in flight (`room`/`wait_room`, `begin`/`end`): workers that waited out a pause
    under a higher limit must not all leave at once when it ends."""

    def __init__(self, max_limit: int, *, stop: asyncio.Event | None = None):
        self.state = Aimd.start(max_limit)
        self.held = 0
        self.sending = 0
        self.stop = stop
        self._cond = asyncio.Condition()
        self.min_seen = self.state.allowed
        self._room_waiters = 0       # workers in wait_room: only they need a wake-up when a request ends
        self._enter_waiters = 0      # workers waiting in enter

    @property
    def state(self) -> Aimd:
        return self._state

    @state.setter
    def state(self, s: Aimd) -> None:
        self._state = s
        self._allowed = s.allowed    # read several times per send: computed once per change

    @property
    def allowed(self) -> int:
        """The in-flight limit now (`Aimd.allowed` of the current state)."""
        return self._allowed

    async def enter(self) -> None:
        if self.held < self._allowed and not self._cond.locked():
            self.held += 1           # what the locked path does when the lock is free and there is room
            return
        async with self._cond:
            self._enter_waiters += 1
            try:
                while self.held >= self._allowed and not (self.stop is not None and self.stop.is_set()):
                    await self._cond.wait()
            finally:
                self._enter_waiters -= 1
            self.held += 1

    async def leave(self) -> None:
        if not (self._enter_waiters or self._room_waiters or self._cond.locked()):
            self.held -= 1           # nobody waits: nothing to notify
            return
        async with self._cond:
            self.held -= 1
            self._cond.notify_all()

    def room(self) -> bool:
        return self.sending < self._allowed or (self.stop is not None and self.stop.is_set())

    async def wait_room(self) -> None:
        async with self._cond:
            self._room_waiters += 1
            try:
                while not self.room():
                    await self._cond.wait()
            finally:
                self._room_waiters -= 1

    def begin(self) -> None:
        self.sending += 1

    def end(self) -> None:
        self.sending -= 1
        if self._room_waiters:     # a task per request only when a worker waits for room
            asyncio.ensure_future(self._wake())

    def answered(self, a: Answer) -> None:
        before = self._allowed
        self.state = aimd_next(self._state, a)
        if self._allowed < self.min_seen:
            self.min_seen = self._allowed
        if self._allowed > before:
            asyncio.ensure_future(self._wake())

    def summary(self) -> dict:
        """For the run's summary: the configured maximum, where the limit ended, its lowest, its cuts."""
        return {"max": self.state.max_limit, "final": self.state.allowed, "lowest": self.min_seen,
                "decreases": self.state.decreases}

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wake_all(self) -> None:
        """A stop: let every waiting worker through (it finds the stop, or the end of the queue)."""
        await self._wake()


async def nap(seconds: float, *, sleep, stop: asyncio.Event | None) -> bool:
    """Sleep `seconds` via the injected sleep, waking at once if `stop` is set. True: stopped."""
    if stop is None:
        await sleep(seconds)
        return False
    if stop.is_set():
        return True
    t = asyncio.ensure_future(sleep(seconds))
    s = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({t, s}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f in (t, s):
            if not f.done():
                f.cancel()
    return stop.is_set()


class Pacer:
    def __init__(self, rate: float | None, *, clock, sleep, stop: asyncio.Event | None = None,
                 on_pause: Callable[[float, str], None] | None = None):
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.stop = stop
        self.on_pause = on_pause
        self.pause_until = 0.0
        self.pause_reason: str | None = None
        self._next_slot = 0.0
        self.pauses = 0
        self.max_usage_pct = 0.0

    async def acquire(self) -> bool:
        """Wait for the next send slot (pauses, rate). False: the run is stopping, do not send."""
        while True:
            if self.stop is not None and self.stop.is_set():
                return False
            now = self.clock()
            if now < self.pause_until:
                if await nap(self.pause_until - now, sleep=self.sleep, stop=self.stop):
                    return False
                continue
            rate = self.rate
            if rate:
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1.0 / rate
                if slot > now and await nap(slot - now, sleep=self.sleep, stop=self.stop):
                    return False
            return True

    def observe(self, usage) -> None:
        """The usage headers of the last answer: at 100 % (or with a regain time) every send pauses.

        Slowing down before that is the in-flight limit's job (`Gate`, `aimd_next`)."""
        if usage is None or not usage.seen:
            return
        self.max_usage_pct = max(self.max_usage_pct, usage.max_pct)
        if usage.throttled and (usage.max_pct > 100.0 or blocked_seconds(usage) > 0):
            self.pause(blocked_seconds(usage) or usage.regain_seconds or 60.0, f"usage {usage.max_pct:.0f}%")

    def pause(self, seconds: float, reason: str) -> bool:
        """Pause every send for `seconds`. A pause that starts (or lengthens one by a second or more)
        is counted and reported; the answers of requests already in flight only extend it quietly."""
        now = self.clock()
        until = now + max(0.0, seconds)
        if until <= self.pause_until:
            return False
        new = now >= self.pause_until or until - self.pause_until >= 1.0
        self.pause_until = until
        self.pause_reason = reason
        if new:
            self.pauses += 1
            if self.on_pause is not None:
                self.on_pause(seconds, reason)
        return new


def account_zone(name: str | None) -> ZoneInfo | timezone:
    """The ad account's zone (`timezone_name`, IANA); UTC when unknown or not a zone name."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.utc


def next_day_start(now: float, zone_name: str | None) -> float:
    """Epoch seconds of the next 00:00 in the ad account's zone after `now` (a daily budget resets then).

    Meta counts an ad account's day in the account's own time zone (the account's `timezone_name`);
    a Pacific account's day starts at 07:00 or 08:00 UTC, not at UTC midnight. A day start that a
    DST change skips (a few zones change at midnight) is taken at the first instant that exists.
    """
    tz = account_zone(zone_name)
    local = datetime.fromtimestamp(now, tz)
    nxt = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
    t = nxt.timestamp()
    if datetime.fromtimestamp(t, tz).date() != nxt.date() or t <= now:   # midnight skipped by DST
        t = datetime.combine(local.date() + timedelta(days=1), time(1), tzinfo=tz).timestamp()
    return float(t)


BUDGET_DAY_GRACE = 600.0       # a 2300054 this soon after the account's midnight may be clock skew
BUDGET_SKEW_RETRY = 300.0


def budget_resume_at(now: float, zone_name: str | None) -> float:
    """When a campaign paused by its daily budget (2300054) may send again: the account's next day.

    Except right after the account's own midnight (within BUDGET_DAY_GRACE): then our clock and
    Meta's may simply disagree about whether the new day has begun, and waiting a whole day would lose
    it; try again after BUDGET_SKEW_RETRY seconds (a refusal after the grace waits for the next day).
    """
    nxt = next_day_start(now, zone_name)
    day_began = next_day_start(now - 26 * 3600, zone_name)
    while True:                                   # the latest day start at or before now
        later = next_day_start(day_began, zone_name)
        if later > now:
            break
        day_began = later
    if now - day_began < BUDGET_DAY_GRACE:
        return min(nxt, now + BUDGET_SKEW_RETRY)
    return nxt


def warmup_poll_delay(probes: int, *, first: float, cap: float, fixed: float | None = None) -> float:
    """Seconds before the next warm-up probe: `fixed` (--warmup-poll), else first, 2x first, ... up to `cap`."""
    if fixed is not None:
        return max(0.1, float(fixed))
    return float(min(cap, first * 2 ** max(0, probes)))
