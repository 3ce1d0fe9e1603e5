"""Claim-time checks (execute/sendable.py): opt-outs committed mid-run, the person cadence, the send window.

In-process emulator on a virtual clock; opt-outs arrive through a second SQLite connection.
"""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.emulator import EmulatorTransport
from migrator.execute.sendable import Screen
from migrator.inventory import ingest_tokens
from migrator.plan import make_plan, write_plan
from migrator.plan.windows import Windows
from migrator.store.workspace import open_workspace
from _exec import Emu, planned
from _hyp import examples
from _plan import AS_OF, BASE_SPEC, spec_file, tok, ts
from conftest import webhook, write_jsonl

TOKENS = [f"TOKEN{i:06d}SECRET" for i in range(60)]


def rows(ws, plan_id):
    return {t: (st, r, nb) for t, st, r, nb in ws.conn.execute(
        "SELECT t.token, e.state, e.reason, e.not_before FROM exec_sends e JOIN tokens t ON t.id = e.token_id "
        "WHERE e.plan_id = ?", (plan_id,))}


class CommitMidRun(EmulatorTransport):
    """The emulator's transport; at the `at`-th send request it first runs `commit` (another connection),
    and remembers the subscription tokens of the send requests that started after it."""

    def __init__(self, app, at, commit):
        super().__init__(app)
        self.at, self.commit, self.sends, self.after = at, commit, 0, []

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/messages"):
            self.sends += 1
            if self.sends == self.at:
                self.commit()
            elif self.sends > self.at:
                body = json.loads(await request.aread())
                self.after.append(body["messenger_delivery_data"]["subscription_token"])
        return await super().handle_async_request(request)


@pytest.mark.parametrize("how", ["connection", "cli"])
def test_opt_outs_committed_by_another_connection_mid_run_stop_those_sends(ws, tmp_path, cli, how):
    p = planned(ws, tmp_path, 60)
    emu = Emu(ws)
    stopped = TOKENS[6:]
    # half the stops carry Meta's (virtual) time: older than the CSV snapshot, so the inventory's
    # status merge keeps them 'active' and only token_events knows; half carry the wall clock
    now_ms = int(time.time() * 1000)
    hooks = write_jsonl(tmp_path / "stops.jsonl", [
        webhook("P1", f"PSID{i:06d}", tok, (int(emu.clock() * 1000) if i % 2 else now_ms) + i,
                status="STOP NOTIFICATIONS", notification_messages_timezone="America/New_York")
        for i, tok in enumerate(stopped, start=6)])

    def commit():
        if how == "cli":                         # `migrator ingest tokens stops.jsonl`, its own connection
            r = cli("ingest", "tokens", hooks)
            assert r.exit_code == 0, r.output
            return
        other = open_workspace(ws.path)          # a second connection
        try:
            ingest_tokens(other, [hooks])
        finally:
            other.close()

    # the stop commits while the 7th request (token 6) is on the wire and the next rows are claimed
    transport = CommitMidRun(emu.app, 7, commit)
    s = emu.run(ws, p, concurrency=2, transport=transport)
    assert transport.sends >= 7
    assert not set(transport.after) & set(stopped), "a stopped token was sent to after its stop was committed"
    led = rows(ws, p.plan_id)
    assert [led[t][0] for t in TOKENS[:7]] == ["sent"] * 7          # token 6 had left before the stop
    assert {led[t][:2] for t in TOKENS[7:]} == {("skipped", "opted_out_during_run")}
    assert s.reasons == {"skipped:opted_out_during_run": 53} and s.skipped == 53
    assert s.failed == 0 and s.outcome == "done"


def test_a_second_plan_with_another_message_never_reaches_people_the_first_plan_reached(ws, tmp_path):
    """A subscription moves to MM once. Plan 2 (another spec, another message) was made before
    plan 1's sends were accepted, so the planner could not leave them out (`already_moved`); at
    claim time its rows are skipped `sent_by_another_plan`, however long it waits. (This used to
    match only an identical message: plan 2 billed the same 3 people again after the cadence.)"""
    p1 = planned(ws, tmp_path, 3)
    spec = spec_file(tmp_path / "spec2", base=BASE_SPEC.replace('name = "test"', 'name = "again"')
                     + '\n[[content]]\npage_id = "P1"\ntopic = "Deals"\nmessage = { text = "Our second campaign: new arrivals." }\n')
    p2 = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_100)
    write_plan(p2, tmp_path / "plan2.json")
    assert p2.plan_id != p1.plan_id and p2.sends == 3
    emu = Emu(ws)
    assert emu.run(ws, p1).sent == 3
    emu.clock.advance(3600)
    s = emu.run(ws, p2, wait=False)
    assert s.attempted == 0 and s.sent == 0 and s.skipped == 3 and s.outcome == "done"
    assert {v[:2] for v in rows(ws, p2.plan_id).values()} == {("skipped", "sent_by_another_plan")}
    emu.clock.advance(48 * 3600)                              # past any cadence: still nobody
    assert emu.run(ws, p2).attempted == 0
    assert len(emu.accepted()) == 3


def test_a_plan_made_mid_run_from_a_copied_spec_with_an_edited_message_bills_nobody_twice(ws, tmp_path):
    """The review's case: plan A has sent its first batch; plan B is made from a copy of the spec
    with an edited message (editing the spec in place would make A stale); A resumes and sends the
    rest; B then runs. B must skip everyone A reached, whichever batch reached them."""
    a = planned(ws, tmp_path, 60, extra="batch_size = 20")
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 20
    spec = spec_file(tmp_path / "spec-copy", "batch_size = 20\n[[content]]\npage_id = \"P1\"\ntopic = \"Deals\"\n"
                     "message = { text = \"Edited: 20% off this week.\" }\n",
                     base=BASE_SPEC.replace('name = "test"', 'name = "copy"'))
    b = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_200)
    assert b.sends == 40 and b.excluded["already_moved"] == 20
    assert emu.run(ws, a).sent == 40                          # A resumes: the other 40
    emu.clock.advance(48 * 3600)
    s = emu.run(ws, b)
    assert s.attempted == 0 and s.skipped == 40
    accepted = [x.token for x in emu.accepted()]
    assert len(accepted) == len(set(accepted)) == 60, "a person was billed twice across plans"


def test_a_failed_send_of_another_plan_does_not_hold_the_person_back(ws, tmp_path):
    """Only rows Meta accepted or may have accepted count: a send Meta refused reached nobody."""
    a = planned(ws, tmp_path, 3)
    spec = spec_file(tmp_path / "spec2", base=BASE_SPEC.replace('name = "test"', 'name = "again"'))
    b = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_100)
    ws.conn.execute("INSERT INTO exec_sends (plan_id, send_id, token_id, campaign_key, message_key, batch,"
                    " not_before, state, reason, updated_at) SELECT plan_id, send_id, token_id, campaign_key,"
                    " message_key, batch, not_before, 'failed', 'graph_error', 0 FROM plan_sends WHERE plan_id = ?",
                    (a.plan_id,))
    ws.conn.commit()
    emu = Emu(ws)
    assert emu.run(ws, b).sent == 3


def test_the_person_cadence_defers_a_send_until_the_cadence_allows():
    """The cadence check itself (pure): a send of the person 1 h ago defers this one to 12 h after it."""
    w = Windows(0, 1440, default_zone="UTC", origin=1_790_000_000)
    sc = Screen(table="x", plan_id="p", cadence_seconds=12 * 3600, windows=w)
    now = 1_790_010_000
    assert sc.decide(campaign_key="c1", not_before=now, zone="UTC", stopped=None, person_last=now - 3600,
                     now=now) == ("defer", "person_cadence", now - 3600 + 12 * 3600)
    assert sc.decide(campaign_key="c1", not_before=now, zone="UTC", stopped=None, person_last=now - 13 * 3600,
                     now=now) == ("ok", None, None)


def test_a_run_started_late_holds_sends_until_the_recipients_window(ws, tmp_path):
    p = planned(ws, tmp_path, 5)                # window 09:00-17:00 America/New_York
    late = ts("2026-03-03T02:00:00Z")           # 21:00 in New York: the day's window has closed
    emu = Emu(ws, start=late)
    s = emu.run(ws, p, wait=False)
    assert s.attempted == 0 and s.outcome == "waiting"
    opens = ts("2026-03-03T14:00:00Z")          # 09:00 the next morning in New York
    assert (s.window_waiting, s.window_opens_at) == (5, opens)
    assert {v[:2] for v in rows(ws, p.plan_id).values()} == {("planned", "window_wait")}
    s = emu.run(ws, p)                          # waits (virtual clock) and sends in the window
    assert s.sent == 5
    assert all(opens <= x.time < ts("2026-03-03T22:00:00Z") for x in emu.accepted())


def test_late_skip_skips_sends_whose_window_passed(ws, tmp_path):
    p = planned(ws, tmp_path, 4)
    emu = Emu(ws, start=ts("2026-03-03T02:00:00Z"))
    s = emu.run(ws, p, wait=False, late="skip")
    assert s.attempted == 0 and s.skipped == 4 and s.reasons == {"skipped:window_missed": 4}
    assert emu.accepted() == []


def test_waiting_for_a_window_after_the_campaign_end_is_window_missed(ws, tmp_path):
    planned(ws, tmp_path, 4)
    # same estate, a plan whose campaign ends at 05:00 UTC: the next window opens after it
    spec = spec_file(tmp_path / "spec3", base=BASE_SPEC.replace(
        "start = 2026-03-02T00:00:00Z", "start = 2026-03-02T00:00:00Z\nend = 2026-03-03T05:00:00Z"))
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    emu = Emu(ws, start=ts("2026-03-03T02:00:00Z"))
    s = emu.run(ws, p, wait=False)
    assert s.reasons == {"skipped:window_missed": 4} and emu.accepted() == []


def test_a_dry_run_ignores_the_window_but_execute_late_cli_flag_is_accepted(ws, tmp_path, cli):
    planned(ws, tmp_path, 3)
    r = cli("execute", tmp_path / "plan.json", "--late", "skip", "--json")
    assert r.exit_code == 0, r.output
    r = cli("execute", tmp_path / "plan.json", "--late", "never")
    assert r.exit_code != 0 and "--late" in r.output


ZONES = ["America/New_York", "Asia/Manila", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London",
         "Australia/Lord_Howe", None]


@settings(max_examples=examples(300), deadline=None)
@given(zone=st.sampled_from(ZONES), start=st.integers(0, 1439), length=st.integers(1, 1439),
       nb=st.integers(1_770_000_000, 1_800_000_000), delay=st.integers(0, 5 * 86400),
       late=st.sampled_from(["wait", "skip"]), end=st.one_of(st.none(), st.integers(0, 6 * 86400)))
def test_a_send_goes_only_inside_its_recipients_window(zone, start, length, nb, delay, late, end):
    w = Windows(start, (start + length) % 1440 or 1440, default_zone="Asia/Manila", origin=nb - 3 * 86400)
    now = nb + delay                                            # a claim looks at due rows only
    ends = {"c1": None if end is None else nb + end}
    sc = Screen(table="x", plan_id="p", cadence_seconds=None, windows=w, ends=ends, late=late)
    verdict, reason, when = sc.decide(campaign_key="c1", not_before=nb, zone=zone, stopped=None,
                                      person_last=None, now=now)
    z = w.zone(zone)
    if verdict == "ok":
        assert w.next_open(z, now) == now                       # inside a window right now
        assert ends["c1"] is None or now < ends["c1"]           # and never at or after the campaign's end
    elif verdict == "defer":
        assert reason == "window_wait" and when > now and w.next_open(z, when) == when
        assert ends["c1"] is None or when < ends["c1"]
    else:
        assert reason == "window_missed"
        assert late == "skip" or (ends["c1"] is not None and w.next_open(z, now) >= ends["c1"])


def test_opt_outs_ingested_between_runs_keep_the_plan_fresh_and_are_honoured(ws, tmp_path, cli):
    """The README's flow over days: run part of the plan, ingest the day's stop webhooks, run the
    same command again. The stops must not make the plan stale (they are re-checked at claim
    time), and none of the stopped tokens is sent to; a file that adds an opt-in still does."""
    p = planned(ws, tmp_path, 60, extra="batch_size = 20")
    emu = Emu(ws)
    first = emu.run(ws, p, batches=1)
    assert first.sent == 20
    now_ms = int(time.time() * 1000)
    stopped = TOKENS[30:40]
    stops = write_jsonl(tmp_path / "stops.jsonl", [
        webhook("P1", f"PSID{i:06d}", tok, now_ms + i, status="STOP_NOTIFICATIONS")
        for i, tok in enumerate(stopped, start=30)])
    r = cli("ingest", "tokens", stops)
    assert r.exit_code == 0, r.output
    second = emu.run(ws, p)
    assert second.outcome == "done", second
    led = rows(ws, p.plan_id)
    assert {led[t][:2] for t in stopped} == {("skipped", "opted_out_during_run")}
    assert {t for t, v in led.items() if v[0] == "sent"} == set(TOKENS) - set(stopped)
    accepted = {s.token for s in emu.accepted()}
    assert not accepted & set(stopped)
    # a new opt-in is a new input the plan never saw: the plan is stale again
    optin = write_jsonl(tmp_path / "optin.jsonl", [webhook("P1", "PSIDNEW", "TOKENNEWSECRET", now_ms + 99)])
    assert cli("ingest", "tokens", optin).exit_code == 0
    from migrator.errors import MigratorError
    with pytest.raises(MigratorError, match="stale|changed"):
        emu.run(ws, p)


def test_an_mm_opt_out_of_one_token_stops_the_persons_other_tokens_on_that_page(ws, tmp_path):
    """Meta: opting out of MM stops MMs from that Page (mm-api.md, Opt-out; 2300034 "subscriber
    stopped MMs"), so the person's other token on the page must not be messaged either."""
    tokens = [tok(i) for i in range(3)] + [tok(50, psid="PSID000000")]    # person 0 has two tokens
    p = planned(ws, tmp_path, tokens=tokens)
    planned_tokens = {r[0] for r in ws.conn.execute(
        "SELECT t.token FROM plan_sends s JOIN tokens t ON t.id = s.token_id WHERE s.plan_id = ?", (p.plan_id,))}
    mine = "TOKEN000000SECRET" if "TOKEN000000SECRET" in planned_tokens else "TOKEN000050SECRET"
    other = "TOKEN000050SECRET" if mine == "TOKEN000000SECRET" else "TOKEN000000SECRET"
    assert mine in planned_tokens and other not in planned_tokens
    # an earlier plan's send to the other token was refused 2300034 (what the executor records)
    ws.conn.execute("INSERT INTO mm_feedback (token_id, state, code, class, seen_at) "
                    "SELECT id, 'opted_out', 2300034, 'recipient_never', 1 FROM tokens WHERE token = ?", (other,))
    ws.conn.commit()
    emu = Emu(ws)
    s = emu.run(ws, p)
    assert mine not in {x.token for x in emu.accepted()}
    assert rows(ws, p.plan_id)[mine][:2] == ("skipped", "opted_out_during_run")
    assert s.sent == 2


def test_a_due_send_after_its_campaigns_end_is_window_missed_even_inside_its_window():
    """A plan whose campaign ended while sends remained: the window check said "ok" inside the
    window, so requests left after the end (Meta answers 2300000, read as warm-up for 3 h)."""
    w = Windows(0, 1440, default_zone="UTC", origin=1_790_000_000)
    sc = Screen(table="x", plan_id="p", cadence_seconds=None, windows=w, ends={"c1": 1_790_000_100})
    assert sc.decide(campaign_key="c1", not_before=1_790_000_000, zone="UTC", stopped=None, person_last=None,
                     now=1_790_000_200) == ("skip", "window_missed", None)
    assert sc.decide(campaign_key="c1", not_before=1_790_000_000, zone="UTC", stopped=None, person_last=None,
                     now=1_790_000_050) == ("ok", None, None)


def test_a_plan_made_again_after_a_partial_run_does_not_message_the_same_people_twice(ws, tmp_path):
    """Plan A sends part of the estate; a new file makes it stale; the engineer audits and plans
    again, as the refusal says. Plan B leaves out the people A already moved (`already_moved`),
    so it neither costs nor sends them; nobody is messaged twice."""
    from migrator.audit import run_audit

    from _plan import ingest, plan, tok

    a = planned(ws, tmp_path, 60, extra="batch_size = 20")
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 20
    ingest(ws, tmp_path / "more", tokens=[tok(i) for i in range(60, 64)], name="more")
    run_audit(ws, as_of=AS_OF)
    b = plan(ws, tmp_path / "spec-b", "batch_size = 20")
    assert b.plan_id != a.plan_id
    sent_by_a = {t for t, v in rows(ws, a.plan_id).items() if v[0] == "sent"}
    assert len(sent_by_a) == 20
    assert b.sends == 44 and b.excluded["already_moved"] == 20
    s = emu.run(ws, b)
    assert not sent_by_a & set(rows(ws, b.plan_id))
    accepted = [x.token for x in emu.accepted()]
    assert len(accepted) == len(set(accepted)), "a person was messaged twice across plans"
    assert s.sent >= 40 and s.attempted == 44       # the emulator was loaded before the 4 new tokens came


def test_a_plan_made_before_another_plans_sends_skips_their_people_at_claim_time(ws, tmp_path):
    """The second guard: plan B was made while plan A's sends were still to go (B cannot leave
    out people nobody had moved yet); A then moves 20 of them. B's sends to them are skipped at
    claim time (`sent_by_another_plan`), never sent twice."""
    a = planned(ws, tmp_path, 60, extra="batch_size = 20")
    spec = spec_file(tmp_path / "spec-b", "batch_size = 20", base=BASE_SPEC.replace('name = "test"', 'name = "b"'))
    b = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_100)
    assert b.plan_id != a.plan_id and b.sends == 60 and "already_moved" not in b.excluded
    emu = Emu(ws)
    assert emu.run(ws, a, batches=1).sent == 20
    s = emu.run(ws, b)
    led = rows(ws, b.plan_id)
    sent_by_a = {t for t, v in rows(ws, a.plan_id).items() if v[0] == "sent"}
    assert len(sent_by_a) == 20
    assert {led[t][:2] for t in sent_by_a} == {("skipped", "sent_by_another_plan")}
    accepted = [x.token for x in emu.accepted()]
    assert len(accepted) == len(set(accepted)) == 60, "a person was messaged twice across plans"
    assert s.skipped >= 20 and s.sent == 40


def test_a_crm_export_ingested_after_a_stop_never_releases_it(ws, tmp_path):
    """The review's case: a stop webhook is logged, then a different CRM export (yesterday's file)
    saying `token_status=active` is ingested. The inventory takes a snapshot as observed at its
    ingest, so the token reads active again. A plan made then from the earlier audit (planned with
    the inventory as it is now) must still not message the person at send time (the check counted
    only stops ingested since the plan: the person was sent), and a fresh audit says opted out."""
    from migrator.audit import run_audit

    stopped = tok(0)["token"]
    planned(ws, tmp_path, 3)
    ingest_tokens(ws, [write_jsonl(tmp_path / "stop.jsonl", [webhook(
        "P1", "PSID000000", stopped, int(time.time() * 1000) - 60_000, status="STOP NOTIFICATIONS")])])
    assert ws.conn.execute("SELECT status FROM tokens WHERE token = ?", (stopped,)).fetchone()[0] == "stopped"
    crm = tmp_path / "crm-yesterday.csv"
    crm.write_text("page_id,token,psid,topic_title,timezone,country,token_status\n"
                   f"P1,{stopped},PSID000000,Deals,America/New_York,US,active\n")
    ingest_tokens(ws, [crm])
    assert ws.conn.execute("SELECT status FROM tokens WHERE token = ?", (stopped,)).fetchone()[0] == "active"
    spec = spec_file(tmp_path / "spec-after", base=BASE_SPEC.replace('name = "test"', 'name = "after"'))
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: int(time.time()) + 5)   # after both ingests
    assert p.sends == 3                                      # the earlier audit said migrate
    emu = Emu(ws)
    s = emu.run(ws, p)
    assert stopped not in {x.token for x in emu.accepted()}, "a person who opted out was messaged"
    assert rows(ws, p.plan_id)[stopped][:2] == ("skipped", "opted_out_during_run")
    assert s.sent == 2
    # a fresh audit says opted out (not migrate, planned, costed and then skipped)
    run_audit(ws, as_of=AS_OF)
    assert ws.conn.execute("SELECT a.verdict FROM audit_tokens a JOIN tokens t ON t.id = a.token_id WHERE t.token = ?"
                           " AND a.run_id = (SELECT MAX(id) FROM audit_runs)", (stopped,)).fetchone()[0] == "opted_out"
