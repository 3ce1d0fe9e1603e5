"""Pacing: a rate limit, slowing down as the usage headers climb, pausing when throttled.

Clock and sleep are injected (tests use a virtual clock; nothing sleeps on the wall clock).
Every wait here watches the run's stop event, so Ctrl-C during a long throttle pause stops at
once instead of after the pause. Each new pause is reported through `on_pause` (the
progress line says why and how long) and counted.
Also here: `next_day_start`, the start of an ad account's next day in its own time zone (a daily
budget resets then, not at UTC midnight), and `warmup_poll_delay`, the warm-up probe backoff.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SLOW_FROM_PCT = 75.0       # start slowing down at this utilisation


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
        self.factor = 1.0
        self.pause_until = 0.0
        self.pause_reason: str | None = None
        self._next_slot = 0.0
        self._recent: deque[float] = deque(maxlen=256)
        self.pauses = 0
        self.max_usage_pct = 0.0

    def observed_rate(self) -> float:
        if len(self._recent) < 2:
            return 10.0
        span = self._recent[-1] - self._recent[0]
        return (len(self._recent) - 1) / span if span > 0 else 1000.0

    def effective_rate(self) -> float | None:
        if self.factor >= 1.0:
            return self.rate
        return max(0.5, (self.rate or self.observed_rate()) * self.factor)

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
            rate = self.effective_rate()
            if rate:
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1.0 / rate
                if slot > now and await nap(slot - now, sleep=self.sleep, stop=self.stop):
                    return False
            self._recent.append(self.clock())
            return True

    def observe(self, usage) -> None:
        """Adapt to the usage headers of the last answer."""
        if usage is None or not usage.seen:
            return
        self.max_usage_pct = max(self.max_usage_pct, usage.max_pct)
        if usage.throttled:
            self.pause(usage.regain_seconds or 60.0, f"usage {usage.max_pct:.0f}%")
        elif usage.max_pct >= SLOW_FROM_PCT:
            self.factor = max(0.05, (100.0 - usage.max_pct) / (100.0 - SLOW_FROM_PCT))
        else:
            self.factor = 1.0

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
