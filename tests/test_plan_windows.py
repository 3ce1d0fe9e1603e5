"""Property tests for local send windows: the answer is inside the window and never early."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.plan.windows import Windows, resolve_zone
from _hyp import examples

ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "Europe/London",
         "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"]


def local_minute(t: int, zone: str) -> int:
    d = datetime.fromtimestamp(t, timezone.utc).astimezone(ZoneInfo(zone))
    return d.hour * 60 + d.minute


def inside(minute: int, start: int, end: int) -> bool:
    return start <= minute < end if start < end else (minute >= start or minute < end)


@settings(max_examples=examples(300), deadline=None)
@given(zone=st.sampled_from(ZONES), t=st.integers(1_767_225_600, 1_830_297_600),
       start=st.integers(0, 23 * 60 + 59), length=st.integers(30, 20 * 60))
def test_next_open_is_inside_and_not_early(zone, t, start, length):
    end = (start + length) % 1440
    w = Windows(start, end, origin=t)
    r = w.next_open(zone, t)
    assert r >= t
    assert r - t <= 2 * 86400
    m = local_minute(r, zone)
    if r > t:
        # it waited: it waited for an opening (DST can shift the opening by up to an hour)
        assert inside(m, start, end) or abs(m - start) <= 60
        # and nothing in between was inside the window (checked every 10 minutes)
        for probe in range(t, r, 600):
            pm = local_minute(probe, zone)
            assert not inside(pm, start, end) or abs(pm - start) <= 60


def test_resolve_zone():
    assert resolve_zone("Asia/Tokyo", "UTC") == "Asia/Tokyo"
    assert resolve_zone(None, "UTC") == "UTC"
    assert resolve_zone("", "Europe/Paris") == "Europe/Paris"
    assert resolve_zone("Not/AZone", "UTC") == "UTC"


def test_a_window_inside_the_spring_forward_gap_does_not_happen_that_day():
    """New York skips 02:00-03:00 on 2026-03-08: a 02:00-03:00 window has no instant that day,
    and a 01:30-02:30 window ends when the clock jumps (no send at 03:xx local)."""
    zone = "America/New_York"
    before_gap = int(datetime(2026, 3, 8, 5, 0, tzinfo=timezone.utc).timestamp())   # 00:00 EST
    w = Windows(120, 180, origin=before_gap)
    r = w.next_open(zone, before_gap)
    assert inside(local_minute(r, zone), 120, 180)
    assert datetime.fromtimestamp(r, ZoneInfo(zone)).day == 9
    w = Windows(90, 150, origin=before_gap)
    opens = [(o, c) for o, c in w.windows(zone, before_gap, before_gap + 86400)]
    o, c = opens[0]
    assert local_minute(o, zone) == 90 and c == int(datetime(2026, 3, 8, 7, 0, tzinfo=timezone.utc).timestamp())
    assert all(inside(local_minute(t, zone), 90, 150) for t in range(o, c, 60))
