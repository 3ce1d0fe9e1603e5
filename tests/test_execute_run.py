"""The executor against the in-process emulator: dry run, exactly-once, resume, outcomes per error class."""

from __future__ import annotations

import httpx
import pytest

from migrator.emulator import FaultProfile
from migrator.errors import LockHeldError, StalePlanError
from migrator.execute import execute_plan
from migrator.execute.lock import acquire
from migrator.plan import make_plan, plan_staleness
from _exec import Emu, ledger, planned
from _plan import AS_OF, BASE_SPEC, ingest, tok, ts


def tokens_sent(emu) -> list[str]:
    return [s.token for s in emu.accepted()]


def test_dry_run_sends_nothing_and_leaves_no_trace(ws, tmp_path):
    p = planned(ws, tmp_path, 12)
    s = execute_plan(ws, p)                    # no transport, no token: the recording transport answers
    assert s.mode == "dry_run" and s.outcome == "done"
    assert s.dry_run == {"campaigns_created": 1, "sends_accepted": 12, "sends_refused": 0, "refused_by_code": {},
                         "already": {}}
    for t in ("exec_plans", "exec_campaigns", "exec_sends", "exec_runs", "exec_lock"):
        assert ws.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] == 0, t
    assert plan_staleness(ws, p) == []
    emu = Emu(ws)
    real = emu.run(ws, p)                      # nothing from the dry run blocks or shortens the real one
    assert real.sent == 12 and len(emu.emulator.state.campaigns) == 1


def test_every_send_exactly_once_and_a_rerun_sends_nothing(ws, tmp_path):
    p = planned(ws, tmp_path, 30)
    emu = Emu(ws)
    s = emu.run(ws, p, concurrency=8)
    assert (s.outcome, s.sent, s.attempted) == ("done", 30, 30)
    assert ledger(ws, p.plan_id) == {"sent": 30}
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE tracking_id IS NULL OR sent_at IS NULL"
                           ).fetchone()[0] == 0
    again = emu.run(ws, p)
    assert again.attempted == 0 and again.campaigns[0]["reused"] is False and again.campaigns[0]["created"] is False
    toks = tokens_sent(emu)
    assert len(toks) == 30 == len(set(toks))
    assert len(emu.emulator.state.campaigns) == 1   # the recorded id was reused


def test_batches_limit_and_stale_plan_refused(ws, tmp_path):
    p = planned(ws, tmp_path, 10, extra="batch_size = 4")
    assert len(p.batches) == 3
    emu = Emu(ws)
    s = emu.run(ws, p, batches=1)
    assert s.sent == 4 and s.ledger["planned"] == 6
    # 6 sends remain: the run must not say "done" (the text then printed no resume command)
    assert s.outcome == "waiting" and "--batches 1" in s.waiting_for and s.exit_code == 0
    ingest(ws, tmp_path / "more", tokens=[tok(100)], name="more")     # the inventory changes
    with pytest.raises(StalePlanError) as e:
        emu.run(ws, p)
    assert "inventory changed" in e.value.message


def test_crash_leftovers_become_unknown_and_are_resent_only_when_asked(ws, tmp_path):
    p = planned(ws, tmp_path, 6)
    emu = Emu(ws)
    emu.run(ws, p, batches=1, execute=True)
    # a run that died with requests in flight (simulated: rows marked in_flight, never answered)
    ws.conn.execute("UPDATE exec_sends SET state = 'in_flight' WHERE send_id <= 2")
    s = emu.run(ws, p)
    assert s.recovered_unknown == 2 and s.attempted == 0
    assert ledger(ws, p.plan_id) == {"sent": 4, "unknown": 2}
    s = emu.run(ws, p, resend_unknown=True, wait=False)
    # no receipt newer than their requests was ingested: they could have gone out, so they stay
    assert s.resent_unknown == 0 and s.attempted == 0
    assert s.resend == {"kept:no_receipt_newer_than_send": 2}
    named = [r[0] for r in ws.conn.execute("SELECT send_id FROM exec_sends WHERE state = 'unknown'")]
    s = emu.run(ws, p, resend_named=tuple(named), wait=False)     # a person names them: they go
    assert s.resent_unknown == 2 and s.attempted == 2
    # (those two had gone out: Meta refuses a second MM within 12 h, so they are rescheduled)
    assert s.rescheduled == 2 and len(tokens_sent(emu)) == 6


def test_recipient_never_marks_the_inventory_and_the_plan_stays_resumable(ws, tmp_path):
    p = planned(ws, tmp_path, 8)
    emu = Emu(ws)
    for i in (1, 2):
        emu.emulator.state.subscribers[f"TOKEN{i:06d}SECRET"].opted_out = True
    emu.emulator.state.subscribers["TOKEN000003SECRET"].region = "FR"
    s = emu.run(ws, p)
    assert (s.sent, s.failed, s.mm_marked) == (5, 3, 3)
    assert ws.conn.execute("SELECT COUNT(*) FROM tokens WHERE mm_state IS NOT NULL").fetchone()[0] == 0
    marks = dict(ws.conn.execute("SELECT t.token, f.state FROM mm_feedback f JOIN tokens t ON t.id = f.token_id"))
    assert marks == {"TOKEN000001SECRET": "opted_out", "TOKEN000002SECRET": "opted_out",
                     "TOKEN000003SECRET": "wrong_region"}
    assert s.reasons == {"failed:recipient_never:opted_out": 2, "failed:recipient_never:wrong_region": 1}
    assert plan_staleness(ws, p) == []     # the executor's own marks do not make its plan stale
    emu.run(ws, p)                               # and a resume is accepted


def test_recipient_later_is_rescheduled_after_its_next_eligible_time(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    emu.emulator.state.last_sent["TOKEN000000SECRET"] = emu.clock() - 3600    # got an MM an hour ago
    s = emu.run(ws, p, wait=False)
    assert s.sent == 4 and s.rescheduled == 1 and s.outcome == "waiting"
    nb = ws.conn.execute("SELECT not_before, state, reason FROM exec_sends JOIN tokens t ON t.id = token_id "
                         "WHERE t.token = 'TOKEN000000SECRET'").fetchone()
    assert nb[1:] == ("planned", "recipient_later:2300035") and nb[0] >= emu.clock() + 11 * 3600
    s = emu.run(ws, p)                           # waits (virtual clock) and then sends it
    assert s.sent == 1 and ledger(ws, p.plan_id) == {"sent": 5}


def _two_page_plan(ws, tmp_path, *, budget_line: str, extra: str = ""):
    toks = [tok(i) for i in range(10)] + [tok(i, page="P2") for i in range(10, 20)]
    from _plan import estate, lib

    estate(ws, tmp_path / "in", toks, pages=[["P1", "Shop One", "US", "111", "USD"],
                                             ["P2", "Shop Two", "US", "111", "USD"]],
           content=[lib("P1", "d", "Deals", {"text": "Deals!"}), lib("P2", "d2", "Deals", {"text": "More deals"})])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace("daily_budget = 1000", budget_line) + extra)
    return make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)


def test_budget_reached_mid_batch_stops_only_that_campaign(ws, tmp_path):
    p = _two_page_plan(ws, tmp_path, budget_line="lifetime_budget = 1000",
                       extra='\n[pages."P2"]\nlifetime_budget = 100000\n')
    emu = Emu(ws, cost_per_message=250)          # P1's campaign pays for 4 messages
    s = emu.run(ws, p, concurrency=1)
    by = {(r[0], r[1]): r[2] for r in ws.conn.execute(
        "SELECT campaign_key, state, COUNT(*) FROM exec_sends GROUP BY 1, 2")}
    c1 = next(c.key for c in p.campaigns if c.page_id == "P1")
    c2 = next(c.key for c in p.campaigns if c.page_id == "P2")
    assert by[(c1, "sent")] == 4 and by[(c1, "skipped")] == 6 and by[(c2, "sent")] == 10
    reasons = {r[0] for r in ws.conn.execute("SELECT reason FROM exec_sends WHERE state = 'skipped'")}
    assert reasons == {"campaign_stopped:2300053"}
    camp = {c["key"]: c for c in s.campaigns}
    assert camp[c1]["state"] == "stopped" and camp[c2]["state"] == "ready"


def test_daily_budget_pauses_the_campaign_until_the_next_day(ws, tmp_path):
    p = planned(ws, tmp_path, 9)
    emu = Emu(ws, cost_per_message=250)          # daily budget 1000, +75 % on one day: 7 a day
    s = emu.run(ws, p, concurrency=1, wait=False)
    assert s.sent == 7 and s.ledger["planned"] == 2 and s.outcome == "waiting"
    s = emu.run(ws, p, concurrency=1)            # waits for the next UTC day (virtual clock)
    assert s.sent == 2 and ledger(ws, p.plan_id) == {"sent": 9}


def test_warmup_waits_with_a_virtual_clock(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws, warmup_seconds=5400)
    t0 = emu.clock()
    msgs = []
    s = emu.run(ws, p, notify=msgs.append)
    assert s.sent == 5 and s.outcome == "done"
    assert emu.clock() - t0 >= 5400
    assert any("warming up (error 2300012)" in m for m in msgs)
    assert min(x.time for x in emu.accepted()) >= t0 + 5400


def test_warmup_no_wait_exits_and_a_later_run_continues(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws, warmup_seconds=3600)
    s = emu.run(ws, p, wait=False)
    assert s.outcome == "waiting" and s.sent == 0 and "warm-up of campaign c1" in s.waiting_for
    assert ledger(ws, p.plan_id) == {"planned": 5}
    emu.clock.advance(3601)
    s = emu.run(ws, p, wait=False)
    assert s.sent == 5 and len(emu.emulator.state.campaigns) == 1


def test_warmup_beyond_the_rules_limit_stops_cleanly(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    # 09:30 in New York: the 3 h limit passes inside the recipients' send window (it closes at 17:00)
    emu = Emu(ws, warmup_seconds=5 * 3600, start=ts("2026-03-02T14:30:00Z"))   # rules: wait at most 3 h
    s = emu.run(ws, p)
    assert s.outcome == "stopped" and "still not ready" in s.error and s.ledger["planned"] == 3


def test_throttling_pauses_until_regain_and_loses_nothing(ws, tmp_path):
    p = planned(ws, tmp_path, 12)
    emu = Emu(ws, account_calls_per_window=5, window_seconds=60)
    s = emu.run(ws, p, concurrency=4)
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 12}
    assert s.throttle_pauses >= 1
    assert len(set(tokens_sent(emu))) == 12


def test_ambiguous_network_failures_become_unknown_and_receipts_settle_them(ws, tmp_path):
    from migrator.execute import ingest_receipts

    p = planned(ws, tmp_path, 40)
    hooks = tmp_path / "hooks.jsonl"
    emu = Emu(ws, webhooks=hooks, faults=FaultProfile(reset_rate=0.25, timeout_rate=0.1), seed=3)
    s = emu.run(ws, p, concurrency=8)
    assert s.unknown > 0 and s.ledger["unknown"] == s.unknown
    assert s.sent + s.unknown == 40
    emu.emulator.close()                         # flush the webhooks
    r = ingest_receipts(ws, [hooks])
    assert r.rejected == 0
    assert ledger(ws, p.plan_id) == {"sent": 40}
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_sends WHERE delivered_at IS NOT NULL").fetchone()[0] == 40
    again = emu.run(ws, p)
    assert again.attempted == 0
    toks = tokens_sent(emu)
    assert len(toks) == 40 == len(set(toks))


class _Inject(httpx.AsyncBaseTransport):
    """Meta answering one chosen Graph error to sends number `at` (1-based), the emulator otherwise."""

    def __init__(self, inner, error: dict, at: set[int]):
        self.inner, self.error, self.at, self.n = inner, error, at, 0

    async def handle_async_request(self, request):
        if request.url.path.endswith("/messages"):
            self.n += 1
            if self.n in self.at:
                return httpx.Response(400, json={"error": {"type": "OAuthException", **self.error}})
        return await self.inner.handle_async_request(request)


def test_fix_payload_stops_that_messages_sends(ws, tmp_path):
    p = planned(ws, tmp_path, 6)
    emu = Emu(ws)
    bad = _Inject(emu.transport(), {"code": 2300010, "message": "No valid creative"}, {1})
    s = emu.run(ws, p, transport=bad, concurrency=1)
    assert s.sent == 0 and ledger(ws, p.plan_id) == {"failed": 6}
    assert {r[0] for r in ws.conn.execute("SELECT reason FROM exec_sends")} <= {"fix_payload", "fix_payload:2300010"}
    assert all("creative" in r[0] for r in ws.conn.execute("SELECT error FROM exec_sends"))


def test_account_fatal_stops_the_run_cleanly(ws, tmp_path):
    p = planned(ws, tmp_path, 6)
    emu = Emu(ws)
    # (a page's set-up refusals such as 2300011 stop only that page: tests/test_preflight_execute.py)
    bad = _Inject(emu.transport(), {"code": 190, "message": "Error validating access token: the session has expired"},
                  {3})
    s = emu.run(ws, p, transport=bad, concurrency=1)
    assert s.outcome == "fatal" and "access token" in s.error and s.hint
    assert s.sent == 2 and ledger(ws, p.plan_id) == {"sent": 2, "planned": 4}
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0
    s = emu.run(ws, p)                           # fixed: the same command finishes the job
    assert s.sent == 4 and ledger(ws, p.plan_id) == {"sent": 6}


def test_retry_later_honours_remaining_seconds(ws, tmp_path):
    p = planned(ws, tmp_path, 4)
    emu = Emu(ws)
    t0 = emu.clock()
    bad = _Inject(emu.transport(), {"code": 2300055, "message": "Cannot send now, retry in about 30 min",
                                    "error_data": {"remaining_seconds": 1800}}, {1})
    s = emu.run(ws, p, transport=bad, concurrency=1)
    assert s.sent == 4 and s.rescheduled == 1
    assert emu.clock() - t0 >= 1800


def test_a_campaign_created_before_a_crash_is_found_not_duplicated(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    c = p.campaigns[0]
    # the previous run created it and died before recording the id
    emu.emulator.state.create_campaign(c.ad_account_id, {"name": c.name, "page_id": c.page_id,
                                                         "daily_budget": c.daily_budget})
    s = emu.run(ws, p)
    assert s.campaigns[0]["reused"] is True and s.sent == 3
    assert len(emu.emulator.state.campaigns) == 1


def test_one_executor_per_workspace(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    held = acquire(ws.conn, "other-plan")        # a live holder (this very process)
    with pytest.raises(LockHeldError) as e:
        emu.run(ws, p)
    assert "another executor holds this workspace" in e.value.message and "unlock" in e.value.hint
    held.release()
    ws.conn.execute("INSERT INTO exec_lock VALUES (1, 'x@h', 999999999, 'elsewhere', 1, 1, 'p', 'n')")
    s = emu.run(ws, p)                           # heartbeat long gone: stale, taken over
    assert s.sent == 3 and "stale lock" in s.lock_note


def test_a_plan_with_two_campaigns_of_one_name_is_refused(ws, tmp_path):
    from migrator.errors import PlanError

    p = _two_page_plan(ws, tmp_path, budget_line="daily_budget = 1000")
    same = p.model_copy(update={"campaigns": [c.model_copy(update={"name": "Same"}) for c in p.campaigns]})
    with pytest.raises(PlanError) as e:
        execute_plan(ws, same)
    assert "both named 'Same'" in e.value.message


def test_a_campaign_meta_refuses_to_create_leaves_its_sends_planned(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)

    class NoCreate(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            if request.url.path.endswith("/message_campaign"):
                return httpx.Response(400, json={"error": {"code": 2300064, "type": "OAuthException",
                                                           "message": "Creative already used by another campaign"}})
            return await emu.transport().handle_async_request(request)

    s = emu.run(ws, p, transport=NoCreate())
    assert s.outcome == "stopped" and "could not be set up" in s.error and "already used" in s.error
    assert ledger(ws, p.plan_id) == {"planned": 3} and s.attempted == 0
    s = emu.run(ws, p)                           # fixed: the same command creates it and sends
    assert s.sent == 3
