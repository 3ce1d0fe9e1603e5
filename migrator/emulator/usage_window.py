"""A rolling usage window, as Meta counts calls: the last `window` seconds, not a fixed clock interval.

Meta's usage headers report the share of a limit used over a rolling window (X-App-Usage: "rolling
one hour"; the BUC limits "per rolling hour"; https://developers.facebook.com/docs/graph-api/overview/rate-limiting),
and refused calls keep counting. A fixed window (reset to zero at each interval) would let a client
burst twice the limit across a boundary and would make the percentage a clock, not a rate.

The window is kept as SLOTS buckets so memory is constant whatever the rate; a bucket leaves the
window once its start is a full window old (at most window/SLOTS early).
"""

from __future__ import annotations

import math
from collections import deque

SLOTS = 60


class RollingWindow:
    """Calls counted over the last `window` seconds in SLOTS buckets."""

    __slots__ = ("window", "width", "buckets", "total")

    def __init__(self, window: float):
        self.window = max(float(window), 1e-6)
        self.width = self.window / SLOTS
        self.buckets: deque[list] = deque()    # [bucket index, count], oldest first
        self.total = 0

    def _expire(self, now: float) -> None:
        while self.buckets and self.buckets[0][0] * self.width + self.window <= now:
            self.total -= self.buckets.popleft()[1]

    def count(self, now: float, limit: int) -> tuple[float, float]:
        """Count one call at `now`: (usage % of `limit`, seconds until it changes meaningfully).

        The seconds are, while over the limit, how long until enough calls have left the window to
        be under it again (the regain time); otherwise how long until every counted call has left
        (Meta's reset_time_duration).
        """
        self._expire(now)
        idx = math.floor(now / self.width)
        if self.buckets and self.buckets[-1][0] == idx:
            self.buckets[-1][1] += 1
        else:
            self.buckets.append([idx, 1])
        self.total += 1
        limit = max(int(limit), 1)
        pct = 100.0 * self.total / limit
        if self.total > limit:
            left = self.total
            for b_idx, n in self.buckets:
                left -= n
                if left <= limit:
                    return pct, max(0.0, b_idx * self.width + self.window - now)
        return pct, max(0.0, self.buckets[-1][0] * self.width + self.window - now)
