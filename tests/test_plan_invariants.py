"""Property test: whatever the schedule and budget settings, a plan keeps its promises."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.plan import make_plan
from migrator.store import open_workspace

from _plan import AS_OF, BASE_SPEC, estate, lib, tok, ts
from _hyp import examples

ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "Asia/Kolkata", "Europe/Lisbon", ""]
FLOOR = ts("2026-03-02T00:00:00Z")


@pytest.fixture(scope="module")
def estate_ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("inv")
    ws = open_workspace(d / "ws.db")
    rnd = random.Random(3)
    toks = [tok(i, tz=rnd.choice(ZONES), topic=rnd.choice(["Deals", "News"]),
                nea=rnd.choice(["", "", "2026-03-03T05:00:00Z", "2026-03-04T18:30:00Z", "2026-02-01T00:00:00Z"]))
            for i in range(80)]
    estate(ws, d, toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                 lib("P1", "news", "News", {"text": "News!"})])
    yield ws, d
    ws.close()


def local_minute(t: int, zone: str) -> int:
    d = datetime.fromtimestamp(t, timezone.utc).astimezone(ZoneInfo(zone or "UTC"))
    return d.hour * 60 + d.minute


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 30), per_day=st.integers(1, 5), per=st.sampled_from(["page", "page_topic"]),
       budget=st.one_of(st.none(), st.tuples(st.sampled_from(["daily_budget", "lifetime_budget"]),
                                             st.integers(1, 120))),
       start_h=st.integers(0, 20), length_h=st.integers(1, 12))
def test_plan_invariants(estate_ws, size, per_day, per, budget, start_h, length_h):
    ws, d = estate_ws
    end_h = (start_h + length_h) % 24
    window = f"{start_h:02d}:00-{end_h:02d}:00"
    text = BASE_SPEC.replace("daily_budget = 1000\n", "" if budget is None else f"{budget[0]} = {budget[1]}\n")
    text = text.replace("09:00-17:00", window)
    text = ("allow_unbounded = true\n" if budget is None else "") + text.replace(
        "[campaign]", f"[campaign]\nper = \"{per}\"") + f"batch_size = {size}\nbatches_per_day = {per_day}\n"
    spec = d / "inv.toml"
    spec.write_text(text)
    p = make_plan(ws, spec, as_of=AS_OF)
    rows = list(ws.db.query(
        "SELECT s.*, t.timezone, t.next_eligible_at AS nea FROM plan_sends s JOIN tokens t ON t.id = s.token_id "
        "WHERE plan_id = ? ORDER BY send_id", [p.plan_id]))
    excluded = ws.conn.execute("SELECT COUNT(*) FROM plan_excluded WHERE plan_id = ?", (p.plan_id,)).fetchone()[0]
    # everyone is either sent to once or excluded with a reason
    assert len(rows) + excluded == 80 and p.sends == len(rows)
    assert len({r["token_id"] for r in rows}) == len(rows)
    assert [r["send_id"] for r in rows] == list(range(1, len(rows) + 1))
    s0, s1 = start_h * 60, end_h * 60
    for r in rows:
        assert r["not_before"] >= max(FLOOR, r["nea"] or 0)
        m = local_minute(r["not_before"], r["timezone"])
        assert (s0 <= m < s1) if s0 < s1 else (m >= s0 or m < s1), (window, r)
    # batches: contiguous send_id ranges of at most batch_size, at most batches_per_day a day
    assert all(b.sends <= size for b in p.batches)
    assert sum(b.sends for b in p.batches) == len(rows)
    assert max(Counter(b.day for b in p.batches).values(), default=0) <= per_day
    assert [r["batch"] for r in rows] == sorted(r["batch"] for r in rows)
    # budgets hold in integer minor units (2 per message)
    for c in p.campaigns:
        assert c.estimated_cost == 2 * c.sends
        mine = [r for r in rows if r["campaign_key"] == c.key]
        if c.lifetime_budget is not None:
            assert c.sends <= c.lifetime_budget // 2
        if c.daily_budget is not None:
            per_day_sends = Counter(r["not_before"] // 86400 for r in mine)
            assert max(per_day_sends.values(), default=0) <= c.daily_budget // 2
        if c.end_time is not None:
            assert all(r["not_before"] < c.end_time for r in mine)
    assert p.unreachable_by_budget == sum(c.unreachable_by_budget for c in p.campaigns)
