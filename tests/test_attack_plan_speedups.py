"""Hostile review of the planner speed-ups (issue 19.5): the NEVER sentinel, odd budgets, ends,
zones and batch sizes the equivalence test's strategies do not generate, and the seal trigger
the planner drops while it writes (crash, tamper afterwards).

Whole plans through the public `make_plan` on estates built by ingest + audit; where an oracle is
needed, the pre-19.5 sequential pass (tests/_schedule_reference.py) plans the same inputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from migrator.plan import make_plan, write_plan
from migrator.plan import build as plan_build
from migrator.plan.build import NEVER
from migrator.plan.staleness import plan_staleness
from migrator.store import open_workspace
from migrator.timeparse import DAY

from _plan import AS_OF, BASE_SPEC, estate, lib, spec_file, tok, ts
from _schedule_reference import ReferenceScheduler

FAR = "2027-08-01T00:00:00Z"          # 500+ days after the floor: beyond the 400-day horizon


def _rows(ws, pid):
    sends = ws.conn.execute("SELECT send_id, token_id, campaign_key, message_key, batch, not_before FROM plan_sends"
                            " WHERE plan_id = ? ORDER BY send_id", (pid,)).fetchall()
    dropped = ws.conn.execute("SELECT token_id, reason, campaign_key FROM plan_excluded WHERE plan_id = ?"
                              " ORDER BY token_id", (pid,)).fetchall()
    return sends, dropped


def _plan(ws, spec):
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    return p, *_rows(ws, p.plan_id)


def _same_as_old_pass(ws, spec, monkeypatch):
    new = _plan(ws, spec)
    with monkeypatch.context() as m:
        m.setattr(plan_build, "Scheduler", ReferenceScheduler)
        old = _plan(ws, spec)
    assert new[0].model_dump(exclude={"created_at"}) == old[0].model_dump(exclude={"created_at"})
    assert new[1:] == old[1:]
    return new


def _no_sentinel(ws, p, tmp_path):
    assert ws.conn.execute("SELECT COUNT(*) FROM plan_sends WHERE not_before >= ?", (NEVER,)).fetchone()[0] == 0
    assert ws.conn.execute("SELECT COUNT(*) FROM plan_sends WHERE not_before IS NULL").fetchone()[0] == 0
    out = tmp_path / "plan-out.json"
    write_plan(p, out)
    text = out.read_text()
    assert str(NEVER) not in text and str(NEVER // DAY) not in text


@pytest.mark.parametrize("budget", ["daily_budget = 1000", "lifetime_budget = 1000", "lifetime_budget = 2"])
def test_a_token_with_no_window_in_the_horizon_is_never_a_send(ws, tmp_path, budget, monkeypatch):
    """Every path through pass 1 (no end, an end, a binding budget): a token first eligible 500 days
    out is `eligible_too_late`, never a send with not_before NEVER, and no figure carries it."""
    toks = [tok(0), tok(1, nea=FAR), tok(2, tz="Asia/Kathmandu", nea=FAR), tok(3, tz="")]
    estate(ws, tmp_path / "in", toks)
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", budget))
    p, sends, dropped = _same_as_old_pass(ws, spec, monkeypatch)
    assert {r[1] for r in dropped if r[1] == "eligible_too_late"} == {"eligible_too_late"}
    assert sum(1 for r in dropped if r[1] == "eligible_too_late") == 2
    assert len(sends) == (1 if budget == "lifetime_budget = 2" else 2)
    _no_sentinel(ws, p, tmp_path)
    for c in p.campaigns:
        for t in (c.first_send_at, c.last_send_at):
            assert t is None or t < ts("2100-01-01T00:00:00Z")


def test_every_token_beyond_the_horizon_gives_an_empty_plan(ws, tmp_path):
    estate(ws, tmp_path / "in", [tok(i, nea=FAR) for i in range(3)])
    p, sends, dropped = _plan(ws, spec_file(tmp_path / "s"))
    assert p.sends == 0 and sends == [] and p.excluded["eligible_too_late"] == 3
    _no_sentinel(ws, p, tmp_path)


def test_a_lifetime_budget_smaller_than_one_message_sends_nothing(ws, tmp_path, monkeypatch):
    estate(ws, tmp_path / "in", [tok(i) for i in range(5)])
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", "lifetime_budget = 1"))
    p, sends, dropped = _same_as_old_pass(ws, spec, monkeypatch)
    assert p.sends == 0 and sends == [] and p.excluded == {"over_budget": 5}


def test_a_daily_budget_smaller_than_one_message_sends_nothing(ws, tmp_path, monkeypatch):
    estate(ws, tmp_path / "in", [tok(i) for i in range(5)])
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 1"))
    p, sends, dropped = _same_as_old_pass(ws, spec, monkeypatch)
    assert p.sends == 0 and sends == [] and p.excluded == {"over_budget": 5}


def test_a_first_send_after_the_campaign_end_leaves_everyone_out(ws, tmp_path, monkeypatch):
    """schedule.start after campaign.end: every row is at or after its campaign's end."""
    estate(ws, tmp_path / "in", [tok(i) for i in range(4)])
    text = BASE_SPEC.replace("[campaign]", "[campaign]\nend = 2026-03-05T00:00:00Z") + \
        "start = 2026-03-10T00:00:00Z\n"
    p, sends, dropped = _same_as_old_pass(ws, spec_file(tmp_path / "s", base=text), monkeypatch)
    assert p.sends == 0 and sends == [] and p.excluded == {"after_campaign_end": 4}


ODD_ZONES = ["Asia/Kathmandu", "Australia/Adelaide", "America/St_Johns", "Australia/Eucla", "Pacific/Chatham",
             "Asia/Kolkata", "America/New_York", "Europe/London", "", "Not/AZone"]


@pytest.mark.parametrize("start,budget", [
    ("2026-03-07T12:00:00Z", "daily_budget = 6"),        # US clocks change 2026-03-08
    ("2026-03-28T00:00:00Z", "daily_budget = 10"),       # Europe 03-29
    ("2026-04-04T00:00:00Z", "lifetime_budget = 30"),    # Australia / Chatham 04-05
    ("2026-04-04T00:00:00Z", "daily_budget = 100000"),   # nothing binds: the set-based pass vs the old one
])
def test_zones_with_odd_offsets_across_clock_changes_match_the_old_pass(ws, tmp_path, monkeypatch, start, budget):
    toks = [tok(i, tz=ODD_ZONES[i % len(ODD_ZONES)], topic=None if i % 3 == 0 else "Deals",
                nea="" if i % 4 else "2026-04-05T01:30:00Z") for i in range(40)]
    estate(ws, tmp_path / "in", toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                               lib("P1", "any", None, {"text": "Hello!"})])
    # the campaign starts at most 30 days after the as-of date (Meta); the sends start at `start`
    text = BASE_SPEC.replace("daily_budget = 1000", budget).replace("start = 2026-03-02T00:00:00Z",
                                                                     "start = " + min(start, "2026-03-28T00:00:00Z"))
    text = text.replace("09:00-17:00", "01:30-02:45") + f"batch_size = 3\nbatches_per_day = 2\nstart = {start}\n"
    p, sends, dropped = _same_as_old_pass(ws, spec_file(tmp_path / "s", base=text), monkeypatch)
    assert len(sends) + len(dropped) >= 1
    _no_sentinel(ws, p, tmp_path)


@pytest.mark.parametrize("budget", ["daily_budget = 1000", "lifetime_budget = 6"])
@pytest.mark.parametrize("size", [2**63 - 1, 2**64])
def test_a_huge_batch_size_is_planned_or_refused_clearly(ws, tmp_path, budget, size):
    """batch_size is only `gt=0`: a typo of 2**64 must be planned (one batch) or a clear spec
    error, never an OverflowError traceback from binding it to SQLite."""
    from migrator.errors import MigratorError

    estate(ws, tmp_path / "in", [tok(i) for i in range(5)])
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", budget))
    spec.write_text(spec.read_text() + f"batch_size = {size}\n")
    try:
        p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    except MigratorError as e:
        assert "batch_size" in str(e)
    else:
        assert p.sends == (3 if budget.startswith("lifetime") else 5) and len(p.batches) == 1


_CRASH = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from migrator.plan import make_plan
    from migrator.plan.schedule import Scheduler
    from migrator.store import open_workspace

    real = Scheduler.{method}

    def crash(self, *a, **kw):
        real(self, *a, **kw)          # the plan's rows are written, the seal's insert trigger is dropped
        os.kill(os.getpid(), signal.SIGKILL)

    Scheduler.{method} = crash
    ws = open_workspace({db!r})
    make_plan(ws, {spec!r}, as_of=__import__("datetime").date(2026, 3, 1), clock=lambda: 1_772_000_000)
""")


@pytest.mark.parametrize("method", ["fast", "slow"], ids=["set_based", "sequential"])
def test_a_plan_killed_while_the_seal_trigger_is_dropped_leaves_it_in_place(db_path, tmp_path, method):
    """kill -9 between the planner's DROP TRIGGER and its CREATE: the transaction never commits, so
    the workspace keeps the trigger; a plan made afterwards is sealed, and a row another connection
    adds to it later makes it stale (execute refuses it)."""
    ws = open_workspace(db_path)
    estate(ws, tmp_path / "in", [tok(i) for i in range(6)])
    triggers = ws.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                               " AND name LIKE 'plan_sends_seal%' ORDER BY name").fetchall()
    ws.close()
    budget = "daily_budget = 1000" if method == "fast" else "lifetime_budget = 8"
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", budget))
    script = _CRASH.format(tests=str(Path(__file__).parent), method=method, db=str(db_path), spec=str(spec))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    ws = open_workspace(db_path)
    try:
        assert ws.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                               " AND name LIKE 'plan_sends_seal%' ORDER BY name").fetchall() == triggers
        assert ws.conn.execute("SELECT COUNT(*) FROM plan_sends").fetchone()[0] == 0
        p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
        assert p.sends == (6 if method == "fast" else 4)
        assert plan_staleness(ws, p, spec=None) == []
        other = open_workspace(db_path)
        try:
            with other.transaction() as c:
                c.execute("INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
                          " not_before) SELECT plan_id, send_id + 100, token_id, campaign_key, message_key, batch,"
                          " not_before FROM plan_sends WHERE plan_id = ? AND send_id = 1", (p.plan_id,))
        finally:
            other.close()
        assert any("were changed" in s for s in plan_staleness(ws, p))
    finally:
        ws.close()


@pytest.mark.parametrize("seed", range(4))
def test_pass_one_gives_each_token_its_first_in_window_moment(ws, tmp_path, seed):
    """Pass 1 (group keys, the per-zone first moment cached at the floor, NEVER) is not covered by
    the equivalence test (both sides share it): hold it to `Windows.next_open` token by token, on
    a plan where nothing moves sends (no budget binds, batches never full)."""
    import random

    from migrator.plan.spec import parse_window
    from migrator.plan.windows import Windows

    rnd = random.Random(seed)
    floor = ts("2026-03-02T00:00:00Z") + rnd.randrange(0, DAY, 900)
    h, length = rnd.randrange(24), rnd.randrange(1, 24)
    window = f"{h:02d}:{rnd.choice(['00', '30', '45'])}-{(h + length) % 24:02d}:15"
    zones = ODD_ZONES + ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC", "Europe/Lisbon"]
    neas = [None, None, floor - 5 * DAY, floor, floor + 1, floor + rnd.randrange(0, 30 * DAY, 60),
            floor + 399 * DAY, floor + 410 * DAY]
    toks = []
    for i in range(60):
        nea = rnd.choice(neas)
        toks.append(tok(i, tz=rnd.choice(zones), topic=rnd.choice(["Deals", None]),
                        nea="" if nea is None else str(nea)))
    estate(ws, tmp_path / "in", toks, content=[lib("P1", "deals", "Deals", {"text": "Deals!"}),
                                               lib("P1", "any", None, {"text": "Hello!"})])
    start = __import__("datetime").datetime.fromtimestamp(floor, __import__("datetime").timezone.utc)
    text = BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 100000000").replace("09:00-17:00", window) \
        + f"start = {start.strftime('%Y-%m-%dT%H:%M:%SZ')}\nbatch_size = 1000\nbatches_per_day = 1000\n" \
        + 'default_timezone = "Asia/Kathmandu"\n'
    p = make_plan(ws, spec_file(tmp_path / "s", base=text), as_of=AS_OF, clock=lambda: 1_772_000_000)
    w = Windows(*parse_window(window), default_zone="Asia/Kathmandu", origin=floor)
    got = dict(ws.conn.execute("SELECT t.token, s.not_before FROM plan_sends s JOIN tokens t ON t.id = s.token_id"
                               " WHERE s.plan_id = ?", (p.plan_id,)).fetchall())
    late = {r[0] for r in ws.conn.execute("SELECT t.token FROM plan_excluded x JOIN tokens t ON t.id = x.token_id"
                                          " WHERE x.plan_id = ? AND x.reason = 'eligible_too_late'", (p.plan_id,))}
    for t in toks:
        nea = int(t["next_eligible_at"]) if t["next_eligible_at"] else None
        if nea is not None and nea >= floor + 400 * DAY:
            assert t["token"] in late and t["token"] not in got
            continue
        want = w.next_open(w.zone(t["timezone"] or None), max(floor, nea or 0))
        assert got[t["token"]] == want, (t, window)


def test_while_the_planner_writes_another_connection_still_sees_the_trigger_and_cannot_write(
        ws, db_path, tmp_path, monkeypatch):
    """The insert trigger is dropped only inside the plan's write transaction: a second connection
    (an executor, a person's sqlite3 shell) reads the committed schema with the trigger, and its
    write to plan_sends waits for the plan's commit, after which the trigger is back and marks it."""
    import sqlite3

    from migrator.plan.schedule import Scheduler

    estate(ws, tmp_path / "in", [tok(i) for i in range(6)])
    first = plan_build.make_plan(ws, spec_file(tmp_path / "s1"), as_of=AS_OF, clock=lambda: 1_772_000_000)
    seen = {}
    real = Scheduler.run

    def observe(self):
        real(self)
        other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
        try:
            seen["mine"] = ws.conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'plan_sends_seal_insert'"
                                           ).fetchone()[0]
            seen["other"] = other.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'plan_sends_seal_insert'"
                                          ).fetchone()[0]
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
                              " not_before) VALUES (?, 999, 1, 'c1', 'm1', 1, 0)", (first.plan_id,))
        finally:
            other.close()

    monkeypatch.setattr(Scheduler, "run", observe)
    second = make_plan(ws, spec_file(tmp_path / "s2", base=OTHER_NAME), as_of=AS_OF, clock=lambda: 1_772_000_000)
    monkeypatch.undo()
    assert seen == {"mine": 0, "other": 1}
    assert second.plan_id != first.plan_id
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("INSERT INTO plan_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
                  " not_before) VALUES (?, 999, 1, 'c1', 'm1', 1, 0)", (first.plan_id,))
    other.close()
    assert any("were changed" in s for s in plan_staleness(ws, first))
    assert plan_staleness(ws, second) == []


OTHER_NAME = BASE_SPEC.replace('name = "test"', 'name = "other"') + "batch_size = 2\n"


@pytest.mark.parametrize("per", ["page", "page_topic"])
def test_a_page_with_hundreds_of_topics_plans_as_the_old_pass(ws, tmp_path, monkeypatch, per):
    """Hundreds of (page, topic) groups, a NULL topic among them, lifetime budgets binding per campaign."""
    toks = [tok(i, topic=None if i % 97 == 0 else f"Topic {i % 400:03d}",
                tz=["America/New_York", "Asia/Kathmandu", ""][i % 3]) for i in range(900)]
    estate(ws, tmp_path / "in", toks, content=[lib("P1", "any", None, {"text": "Hello!"})] + [
        lib("P1", f"t{k}", f"Topic {k:03d}", {"text": f"News {k}"}) for k in range(400)])
    text = BASE_SPEC.replace("daily_budget = 1000", "lifetime_budget = 3").replace(
        "[campaign]", f'[campaign]\nper = "{per}"') + "batch_size = 7\nbatches_per_day = 3\n"
    p, sends, dropped = _same_as_old_pass(ws, spec_file(tmp_path / "s", base=text), monkeypatch)
    assert len(sends) + len(dropped) == 900 and len(sends) == len(p.campaigns)   # USD 0.03 at 0.02 a message: one each
    assert len(p.campaigns) == (1 if per == "page" else len({t["topic_title"] for t in toks}))


@pytest.mark.parametrize("budget", ["daily_budget = 100000", "lifetime_budget = 4000"], ids=["set_based", "sequential"])
def test_a_disk_that_fills_up_while_planning_loses_neither_the_trigger_nor_the_error(ws, tmp_path, budget):
    """SQLITE_FULL in the middle of the planner's writes (the trigger dropped): the error the user
    sees is the full disk (not "trigger already exists" from the cleanup), nothing of the plan is
    kept, the triggers are as they were, and with room again the plan is made."""
    import sqlite3
    import traceback

    estate(ws, tmp_path / "in", [tok(i) for i in range(3000)])
    triggers = ws.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name").fetchall()
    spec = spec_file(tmp_path / "s", base=BASE_SPEC.replace("daily_budget = 1000", budget))
    pages = ws.conn.execute("PRAGMA page_count").fetchone()[0]
    inside = 0
    for extra in range(0, 200, 2):
        ws.conn.execute(f"PRAGMA max_page_count = {pages + extra}")
        try:
            p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
        except sqlite3.OperationalError as e:
            assert "full" in str(e), e
            inside += "pass_schedule" in [f.name for f in traceback.extract_tb(e.__traceback__)]
            assert ws.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
                                   ).fetchall() == triggers
            assert ws.conn.execute("SELECT COUNT(*) FROM plan_sends").fetchone()[0] == 0
            assert ws.conn.execute("SELECT COUNT(*) FROM plans").fetchone()[0] == 0
        else:
            break
    assert inside > 0, "the disk never filled up inside the planner's writes"
    assert p.sends == (3000 if budget.startswith("daily") else 2000)
    assert plan_staleness(ws, p) == []
