"""Property test: the planner's sequential pass gives, row for row, the plan the pre-19.5 pass gave.

Issue 19.5 changed how `Scheduler.slow` writes (its decisions go to SQLite through `json_each`
instead of one executemany tuple per send). Its budgets, campaign ends, batch days and pushes must
not change: on the same `_plan_ord` (random campaigns with daily, lifetime or no budgets, ends,
send windows, zones on both sides of the date line and across clock changes, start dates, batch
sizes) both passes must write the same `plan_sends` and `plan_excluded` rows and report the same
batches, campaign and message figures. The old pass is kept as the oracle in
tests/_schedule_reference.py. A second test holds whole plans (`make_plan` on a small estate,
through ingest and the audit) to the same oracle.
"""

from __future__ import annotations

import copy
import random
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.plan import make_plan
from migrator.plan import build as plan_build
from migrator.plan.campaigns import CampaignState
from migrator.plan.schedule import Scheduler
from migrator.plan.spec import parse_window
from migrator.plan.windows import Windows
from migrator.store import open_workspace
from migrator.timeparse import DAY

from _hyp import examples
from _plan import AS_OF, BASE_SPEC, estate, lib, tok, ts
from _schedule_reference import ReferenceScheduler

ZONES = ["America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata", "Europe/Lisbon",
         "Australia/Lord_Howe", "UTC"]
T0 = ts("2026-01-05T00:00:00Z")


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    ws = open_workspace(tmp_path_factory.mktemp("sched") / "ws.db")
    yield ws.conn
    ws.close()


def _campaign(i: int, rnd: random.Random, floor: int) -> CampaignState:
    kind = rnd.choice(["none", "daily", "lifetime"])
    budget = rnd.randrange(0, 40)
    end = None if rnd.random() < 0.4 else floor + rnd.randrange(0, 12 * DAY, 3600)
    if kind == "lifetime" and end is None:
        end = floor + 30 * DAY
    return CampaignState(key=f"c{i + 1}", name=f"c{i + 1}", page_id="P", topic_title=None,
                         ad_account_id="1", currency="USD",
                         daily_budget=budget if kind == "daily" else None,
                         lifetime_budget=budget if kind == "lifetime" else None,
                         start_time=floor, end_time=end, floor=floor, cost=rnd.randrange(1, 4),
                         cost_source="spec")


def _run(conn, cls, pid, setup):
    campaigns, messages, window, znames, schedule = copy.deepcopy(setup)
    excluded: dict[str, int] = {}
    s = cls(conn, pid, schedule, campaigns, messages, window, znames, excluded)
    s.slow()
    sends = conn.execute("SELECT send_id, token_id, campaign_key, message_key, batch, not_before FROM plan_sends"
                         " WHERE plan_id = ? ORDER BY send_id", (pid,)).fetchall()
    dropped = conn.execute("SELECT token_id, reason, campaign_key FROM plan_excluded WHERE plan_id = ?"
                           " ORDER BY token_id", (pid,)).fetchall()
    figures = [(c.sends, c.unreachable, c.first, c.last) for c in campaigns]
    return sends, dropped, s.batches, s.sends, figures, [m["sends"] for m in messages], excluded


@settings(max_examples=examples(200), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 90), n_campaigns=st.integers(1, 4),
       size=st.integers(1, 12), per_day=st.integers(1, 4), start_h=st.integers(0, 23),
       length_h=st.integers(1, 23), start_day=st.integers(0, 330))
def test_sequential_pass_matches_the_old_one_row_for_row(conn, seed, n, n_campaigns, size, per_day, start_h,
                                                          length_h, start_day):
    rnd = random.Random(seed)
    floor = T0 + start_day * DAY + rnd.randrange(0, DAY, 900)
    window = Windows(*parse_window(f"{start_h:02d}:00-{(start_h + length_h) % 24:02d}:00"), default_zone="UTC",
                     origin=floor)
    znames = rnd.sample(ZONES, rnd.randrange(1, len(ZONES) + 1))
    campaigns = [_campaign(i, rnd, floor) for i in range(n_campaigns)]
    messages = []
    msgs_of = []
    for i, c in enumerate(campaigns):
        mine = []
        for _ in range(rnd.randrange(1, 3)):
            mine.append(len(messages))
            messages.append({"key": f"m{len(messages) + 1}", "campaign_key": c.key, "sends": 0})
        msgs_of.append(mine)
    rows = []
    for t in rnd.sample(range(1, 10_000), n):
        ci, z = rnd.randrange(n_campaigns), rnd.randrange(len(znames))
        eligible = floor + (0 if rnd.random() < 0.5 else rnd.randrange(0, 5 * DAY, 60))
        rows.append((window.next_open(znames[z], eligible), t, ci, rnd.choice(msgs_of[ci]), z))
    rows.sort()
    conn.execute("DROP TABLE IF EXISTS temp._plan_ord")
    conn.execute("CREATE TEMP TABLE _plan_ord (send_id INTEGER PRIMARY KEY, token_id INTEGER,"
                 " c INTEGER, m INTEGER, z INTEGER, not_before INTEGER, first_not_before INTEGER)")
    conn.executemany("INSERT INTO _plan_ord (token_id, c, m, z, not_before, first_not_before) VALUES (?,?,?,?,?,?)",
                     [(t, c, m, z, nb, nb) for nb, t, c, m, z in rows])
    for table in ("plan_sends", "plan_excluded"):
        conn.execute(f"DELETE FROM {table}")
    setup = (campaigns, messages, window, znames, SimpleNamespace(batch_size=size, batches_per_day=per_day))
    old = _run(conn, ReferenceScheduler, "pold", setup)
    new = _run(conn, Scheduler, "pnew", setup)
    assert new == old


@pytest.fixture(scope="module")
def estate_ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("eq")
    ws = open_workspace(d / "ws.db")
    rnd = random.Random(5)
    toks = [tok(i, tz=rnd.choice(["Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York", "Asia/Kolkata", ""]),
                topic=rnd.choice(["Deals", "News"]),
                nea=rnd.choice(["", "", "2026-03-03T05:00:00Z", "2026-03-06T18:30:00Z", "2026-02-01T00:00:00Z"]))
            for i in range(120)]
    estate(ws, d, toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                 lib("P1", "news", "News", {"text": "News!"})])
    yield ws, d
    ws.close()


def _toml(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_plan(ws, spec):
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    sends = ws.conn.execute("SELECT send_id, token_id, campaign_key, message_key, batch, not_before FROM plan_sends"
                            " WHERE plan_id = ? ORDER BY send_id", (p.plan_id,)).fetchall()
    dropped = ws.conn.execute("SELECT token_id, reason, campaign_key FROM plan_excluded WHERE plan_id = ?"
                              " ORDER BY token_id", (p.plan_id,)).fetchall()
    return p.model_dump(exclude={"created_at"}), sends, dropped


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 30), per_day=st.integers(1, 5), per=st.sampled_from(["page", "page_topic"]),
       budget=st.tuples(st.sampled_from(["daily_budget", "lifetime_budget"]), st.integers(2, 90)),
       start_h=st.integers(0, 23), length_h=st.integers(1, 12), start=st.integers(0, 20),
       end_days=st.one_of(st.none(), st.integers(1, 6)))
def test_whole_plans_match_the_old_pass(estate_ws, monkeypatch, size, per_day, per, budget, start_h, length_h,
                                        start, end_days):
    ws, d = estate_ws
    window = f"{start_h:02d}:00-{(start_h + length_h) % 24:02d}:00"
    begin = ts("2026-03-02T00:00:00Z") + start * 3 * 3600
    text = BASE_SPEC.replace("daily_budget = 1000\n", f"{budget[0]} = {budget[1]}\n")
    text = text.replace("09:00-17:00", window).replace("start = 2026-03-02T00:00:00Z", f"start = {_toml(begin)}")
    if end_days is not None:
        text = text.replace("[campaign]", f"[campaign]\nend = {_toml(begin + end_days * DAY)}")
    text = text.replace("[campaign]", f"[campaign]\nper = \"{per}\"") + \
        f"batch_size = {size}\nbatches_per_day = {per_day}\n"
    spec = d / "eq.toml"
    spec.write_text(text)
    new = _whole_plan(ws, spec)
    with monkeypatch.context() as m:
        m.setattr(plan_build, "Scheduler", ReferenceScheduler)
        old = _whole_plan(ws, spec)
    assert new == old
