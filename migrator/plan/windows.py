"""Send windows in the subscriber's local time, as UTC instants (pure, cached per zone).

A window is [open, close) on each local day; an end at or before the start closes on the
next local day. Days are built from local calendar dates through zoneinfo, so daylight
saving changes and zones on either side of the date line come out right.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from migrator.timeparse import DAY


def resolve_zone(name: str | None, default: str) -> str:
    """The zone to schedule in: the token's zone when zoneinfo knows it, else `default`."""
    if name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return default


def _instant(tz: ZoneInfo, d: date, minute: int) -> int:
    """The instant local day `d` reaches `minute` past midnight in `tz`.

    A wall time skipped by a clock change (spring forward) is reached at the change itself:
    the clock jumps past it. A repeated wall time (fall back) counts from its first occurrence.
    """
    wall = datetime.combine(d, time(minute // 60, minute % 60), tzinfo=tz)
    before, after = int(wall.timestamp()), int(wall.replace(fold=1).timestamp())
    if before <= after:      # exists (once, or twice: the first one is `before`)
        return before
    # skipped: `before` reads the time with the old offset, `after` with the new one; the
    # change lies between them (at most a day apart): find its instant
    lo, hi = after, before
    new_offset = wall.replace(fold=1).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return hi


class Windows:
    """next_open(zone, t): the first instant >= t inside the zone's local send window."""

    def __init__(self, start_minute: int, end_minute: int, default_zone: str = "UTC",
                 origin: int | None = None):
        """`origin` (epoch s): no query will ask about an earlier instant."""
        self.origin = origin
        self.start_minute = start_minute
        self.end_minute = end_minute
        self.default_zone = default_zone
        self._zones: dict[str, tuple[ZoneInfo, date, list[int], list[int], list[int]]] = {}
        self._known: dict[str | None, str] = {}

    def zone(self, name: str | None) -> str:
        z = self._known.get(name)
        if z is None:
            z = self._known[name] = resolve_zone(name, self.default_zone)
        return z

    def _window(self, tz: ZoneInfo, d: date) -> tuple[int, int]:
        """The UTC [open, close) of day `d`'s window; open >= close when the day has none."""
        sm, em = self.start_minute, self.end_minute
        end_day = d if em > sm else d + timedelta(days=1)
        if em == 1440:
            end_day, em = d + timedelta(days=1), 0
        return _instant(tz, d, sm), _instant(tz, end_day, em)

    def _extend(self, zone: str, t: int) -> tuple[list[int], list[int]]:
        entry = self._zones.get(zone)
        if entry is None:
            tz = ZoneInfo(zone)
            base = t if self.origin is None else min(t, self.origin)
            first = datetime.fromtimestamp(base, timezone.utc).date() - timedelta(days=2)
            entry = self._zones[zone] = (tz, first, [], [], [0])
        tz, first, opens, closes, days = entry
        while not closes or closes[-1] <= t:
            o, c = self._window(tz, first + timedelta(days=days[0]))
            days[0] += 1
            if o < c:   # a window that falls wholly into a clock change's gap does not happen
                opens.append(o)
                closes.append(c)
        return opens, closes

    def next_open(self, zone: str, t: int) -> int:
        """First instant >= t (epoch s) inside the local window of `zone` (already resolved)."""
        opens, closes = self._extend(zone, t)
        i = bisect_right(closes, t)
        if i >= len(opens):  # pragma: no cover - _extend guarantees a later close
            opens, closes = self._extend(zone, t + DAY)
        o = opens[i]
        return t if t >= o else o

    def windows(self, zone: str, lo: int, hi: int) -> list[tuple[int, int]]:
        """Every (open, close) of `zone` whose close is after `lo`, through one that closes after `hi`."""
        opens, closes = self._extend(zone, max(lo, hi))
        i = bisect_right(closes, lo)
        out = []
        while i < len(opens):
            out.append((opens[i], closes[i]))
            if closes[i] > hi:
                break
            i += 1
        return out
