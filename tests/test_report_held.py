"""The readiness report says what the executor's claim rule will do with people another plan's
*unsettled* send holds (its row in flight or unknown): the run skips them as
`sent_by_another_plan`, so they are neither "to send" nor "reached", but held, counted apart,
with what settles them (receipts or `--resend-unknown` on the holding plan).

Plan A and plan B over the same people (B made before A ran, as in test_attack_claim_rule);
A sends some, a kill -9 leaves others in flight / unknown; the in-process emulator runs.
"""

from __future__ import annotations

import csv
import io
import json
import re

from migrator.report import build_readiness_report, render_report
from migrator.report.per_page import business_model
from migrator.report.render import readiness_csv
from _exec import Emu, ledger, planned
from test_attack_claim_rule import _second_plan

CLOCK = lambda: 1_772_100_000  # noqa: E731


def _held_estate(ws, tmp_path):
    a = planned(ws, tmp_path, n=8, extra="batch_size = 2")
    b = _second_plan(ws, tmp_path)
    assert b.sends == 8
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 2                # A reached 2 people
    # what a kill -9 leaves: A claimed 3 more, their answers never recorded; one already recovered
    ids = [r[0] for r in ws.conn.execute("SELECT send_id FROM exec_sends WHERE plan_id = ? AND state = 'planned'"
                                         " ORDER BY send_id LIMIT 3", (a.plan_id,))]
    ws.conn.execute("UPDATE exec_sends SET state = 'in_flight' WHERE plan_id = ? AND send_id IN (?, ?)",
                    (a.plan_id, ids[0], ids[1]))
    ws.conn.execute("UPDATE exec_sends SET state = 'unknown' WHERE plan_id = ? AND send_id = ?", (a.plan_id, ids[2]))
    assert ledger(ws, a.plan_id) == {"sent": 2, "in_flight": 2, "unknown": 1, "planned": 3}
    return a, b, emu


def test_people_held_by_another_plans_unsettled_send_are_held_not_waiting(ws, tmp_path):
    a, b, emu = _held_estate(ws, tmp_path)
    r = build_readiness_report(ws, clock=CLOCK)
    assert r.provenance.plan_id == b.plan_id
    (p,) = [p for p in r.pages if p.page_id == "P1"]
    cu = p.cutover
    assert cu.plan_id == b.plan_id and cu.planned == cu.to_send == 8
    assert cu.already_reached == 2
    assert cu.held_by_another_plan == 3 and cu.held_by_plans == [a.plan_id]
    waiting = cu.to_send - cu.already_reached - cu.held_by_another_plan
    assert waiting == 3 and cu.state == "not_started"

    # HTML: "3 to send", the held ones said apart with what settles them
    html = render_report(r)
    line = next(m for m in re.findall(r"<p>Cutover.*?</p>", html, re.S) if "of 8 messages" in m)
    assert ", 3 to send" in line, line
    assert "3 more messages" in line and a.plan_id in line and "--resend-unknown" in line, line
    # JSON (the embedded model) and CSV carry the same counts
    data = json.loads(r.model_dump_json())
    page = next(x for x in data["pages"] if x["page_id"] == "P1")
    assert page["cutover"]["held_by_another_plan"] == 3 and page["cutover"]["already_reached"] == 2
    row = next(x for x in csv.DictReader(io.StringIO(readiness_csv(r))) if x["page_id"] == "P1")
    assert (row["cutover_to_send"], row["already_reached"], row["held_by_another_plan"]) == ("3", "2", "3")

    # a business file names no plan id, not even the holding plan's
    biz = business_model(r, "P1")
    text = biz.model_dump_json() + render_report(biz, business=True)
    assert a.plan_id not in text and b.plan_id not in text
    assert biz.pages[0].cutover.held_by_another_plan == 3

    # what the run does: B sends to the 3 waiting, skips the 2 reached and the 3 held
    emu.clock.advance(3600)
    s = emu.run(ws, b)
    assert s.sent == 3 and s.skipped == 5


def test_a_settled_send_is_no_longer_held(ws, tmp_path):
    """Once plan A's unsettled rows are settled (here: failed, Meta did not take them), B waits for them."""
    a, b, _ = _held_estate(ws, tmp_path)
    ws.conn.execute("UPDATE exec_sends SET state = 'failed' WHERE plan_id = ? AND state IN ('in_flight', 'unknown')",
                    (a.plan_id,))
    cu = next(p for p in build_readiness_report(ws, clock=CLOCK).pages if p.page_id == "P1").cutover
    assert cu.already_reached == 2 and cu.held_by_another_plan == 0 and cu.held_by_plans == []


def test_subscribers_held_by_another_plan_are_said_apart_before_and_after_the_run(ws, tmp_path):
    a, b, emu = _held_estate(ws, tmp_path)
    p = next(p for p in build_readiness_report(ws, clock=CLOCK).pages if p.page_id == "P1")
    s = p.subscribers
    assert (s.moved, s.move, s.held_by_another_plan) == (2, 6, 3)
    assert s.total == s.move + s.moved + s.stay + s.lost + s.opted_out + s.undecided
    move = next(x for x in p.actions if x.counts == "move")
    assert move.count == 6 and "3 subscriptions of these wait on another plan's unsettled send" in move.what
    # B runs: it reaches the 3 nobody held, skips the rest; the held 3 are still to move, and the
    # page says why (not "left out by the plan, over budget, or refused"), and is not done
    emu.clock.advance(3600)
    assert emu.run(ws, b).sent == 3
    r = build_readiness_report(ws, clock=CLOCK)
    p = next(p for p in r.pages if p.page_id == "P1")
    s = p.subscribers
    assert (s.moved, s.move, s.held_by_another_plan) == (5, 3, 3)
    assert p.status != "done" and p.cutover.state == "done"
    move = next(x for x in p.actions if x.counts == "move")
    assert "unsettled" in move.what and "--resend-unknown" in move.what and "refused" not in move.what, move.what
    html = render_report(r)
    assert "3 still to move (3 of them held by another plan&#39;s unsettled send)" in html or \
        "3 still to move (3 of them held by another plan's unsettled send)" in html
    row = next(x for x in csv.DictReader(io.StringIO(readiness_csv(r))) if x["page_id"] == "P1")
    assert row["subscribers_held_by_another_plan"] == "3" and row["move"] == "3"
    # A settles (its unknown rows were accepted after all): they moved, nothing is held any more
    ws.conn.execute("UPDATE exec_sends SET state = 'sent' WHERE plan_id = ? AND state IN ('in_flight', 'unknown')",
                    (a.plan_id,))
    s = next(p for p in build_readiness_report(ws, clock=CLOCK).pages if p.page_id == "P1").subscribers
    assert (s.moved, s.move, s.held_by_another_plan) == (8, 0, 0)
