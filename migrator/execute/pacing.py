"""Pacing: a rate limit, slowing down as the usage headers climb, pausing when throttled.

Clock and sleep are injected (tests use a virtual clock; nothing sleeps on the wall clock).
"""

from __future__ import annotations

from collections import deque

SLOW_FROM_PCT = 75.0       # start slowing down at this utilisation


class Pacer:
    def __init__(self, rate: float | None, *, clock, sleep):
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
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

    async def acquire(self) -> None:
        while True:
            now = self.clock()
            if now < self.pause_until:
                await self.sleep(self.pause_until - now)
                continue
            rate = self.effective_rate()
            if rate:
                slot = max(now, self._next_slot)
                self._next_slot = slot + 1.0 / rate
                if slot > now:
                    await self.sleep(slot - now)
            self._recent.append(self.clock())
            return

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

    def pause(self, seconds: float, reason: str) -> None:
        until = self.clock() + max(0.0, seconds)
        if until > self.pause_until:
            self.pause_until = until
            self.pause_reason = reason
            self.pauses += 1
