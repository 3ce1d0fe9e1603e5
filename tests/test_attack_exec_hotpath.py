"""Attacks on the executor's hot-path changes (idle-campaign marks, one data_version check per send,
the Gate's lock-free enter/leave, uvloop): opt-outs committed by another connection while rows wait
in the pacer or a throttle pause, the Gate under decreases and cancellation, many small campaigns,
the executor without uvloop and a SIGINT on uvloop.

In-process emulator on a virtual clock; the other connection is a second SQLite connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys

import httpx
import pytest

from migrator.execute import execute_plan
from migrator.execute.pacing import Answer, Gate
from migrator.inventory import ingest_tokens
from migrator.store.workspace import open_workspace
from _exec import Emu, ledger, planned
from conftest import webhook, write_jsonl
from test_execute_claim import CommitMidRun, TOKENS, rows


# ------------------------------------------------------------------ opt-outs while rows wait
def _stops(tmp_path, emu, tokens):
    return write_jsonl(tmp_path / "stops.jsonl", [
        webhook("P1", f"PSID{i:06d}", tok, int(emu.clock() * 1000) + i, status="STOP NOTIFICATIONS",
                notification_messages_timezone="America/New_York")
        for i, tok in enumerate(tokens, start=100)])


def _commit_stops(ws, hooks):
    def commit():
        other = open_workspace(ws.path)
        try:
            ingest_tokens(other, [hooks])
        finally:
            other.close()
    return commit


class ThrottleAndCommit(CommitMidRun):
    """At the `at`-th send: the opt-outs commit (another connection) and Meta answers a throttle
    (code 613, every send pauses) - the claimed rows wait out the pause, then must be re-checked."""

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/messages") and self.sends + 1 == self.at:
            self.sends += 1
            self.commit()
            return httpx.Response(400, json={"error": {"type": "OAuthException", "code": 613,
                                                       "message": "Calls to this api have exceeded the rate limit."}})
        return await super().handle_async_request(request)


@pytest.mark.parametrize("concurrency,rate", [(8, 4.0), (16, 40.0), (4, None)])
def test_opt_outs_committed_while_claimed_rows_wait_for_the_pacer_reach_nobody(ws, tmp_path, concurrency, rate):
    # with a low rate, claimed rows wait in Pacer.acquire (after the first, data_version-free check):
    # the check nearest the request must still see the stop
    p = planned(ws, tmp_path, 60)
    emu = Emu(ws)
    stopped = TOKENS[10:]
    transport = CommitMidRun(emu.app, 5, _commit_stops(ws, _stops(tmp_path, emu, stopped)))
    s = emu.run(ws, p, concurrency=concurrency, rate=rate, transport=transport)
    assert not set(transport.after) & set(stopped), "a stopped token was sent to after its stop was committed"
    led = rows(ws, p.plan_id)
    assert {led[t][0] for t in stopped} <= {"skipped", "sent"}
    sent_stopped = [t for t in stopped if led[t][0] == "sent"]
    assert len(sent_stopped) <= concurrency          # only requests already on the wire at the commit
    assert s.outcome == "done" and "in_flight" not in ledger(ws, p.plan_id)


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_opt_outs_committed_at_a_throttle_pause_reach_nobody_after_the_pause(ws, tmp_path, concurrency):
    p = planned(ws, tmp_path, 60)
    emu = Emu(ws)
    stopped = TOKENS[8:]
    transport = ThrottleAndCommit(emu.app, 6, _commit_stops(ws, _stops(tmp_path, emu, stopped)))
    s = emu.run(ws, p, concurrency=concurrency, transport=transport)
    assert not set(transport.after) & set(stopped), "a stopped token was sent to after a throttle pause"
    led = rows(ws, p.plan_id)
    assert all(led[t][0] in ("skipped", "sent") for t in stopped)
    assert sum(led[t][0] == "sent" for t in stopped) <= concurrency
    assert s.outcome == "done" and "in_flight" not in ledger(ws, p.plan_id)


# ------------------------------------------------------------------ the Gate
def _throttle(t: float) -> Answer:
    return Answer(sent_at=t, now=t + 0.1, throttled=True, in_flight=8)


@pytest.mark.parametrize("seed", range(25))
def test_the_gate_never_exceeds_its_limit_never_goes_negative_and_lets_every_worker_through(seed):
    rnd = random.Random(seed)

    async def go():
        gate = Gate(8, stop=asyncio.Event())
        inside = 0
        worst = 0
        t = [0.0]

        async def worker(i):
            nonlocal inside, worst
            for _ in range(rnd.randint(1, 6)):
                await gate.enter()
                inside += 1
                assert gate.held == inside
                # nobody enters beyond the limit in force when it enters (a decrease lets the
                # ones inside drain; it never lets more in)
                assert inside <= gate.allowed, (inside, gate.allowed)
                worst = max(worst, inside)
                try:
                    for _ in range(rnd.randint(0, 3)):
                        await asyncio.sleep(0)
                    r = rnd.random()
                    t[0] += 1.0
                    if r < 0.15:
                        gate.answered(_throttle(t[0]))          # AIMD decrease while others wait
                    elif r < 0.6:
                        gate.answered(Answer(sent_at=t[0], now=t[0] + 0.1, in_flight=inside))
                finally:
                    inside -= 1
                    await gate.leave()
                    assert gate.held >= 0

        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(40))), 5)
        assert gate.held == 0 and gate._enter_waiters == 0 and gate._room_waiters == 0
        return worst

    assert asyncio.run(go()) <= 8


def test_the_gate_admits_no_more_than_its_lowered_limit_while_workers_wait():
    async def go():
        gate = Gate(4, stop=asyncio.Event())
        for _ in range(4):
            await gate.enter()
        entered = []

        async def waiter(i):
            await gate.enter()
            entered.append(i)

        ws = [asyncio.ensure_future(waiter(i)) for i in range(6)]
        await asyncio.sleep(0)
        gate.answered(_throttle(1.0))                  # 4 -> 2 while six wait
        assert gate.allowed == 2
        for _ in range(3):                             # 4 -> 1 held: room for one
            await gate.leave()
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(entered) == 1 and gate.held == 2
        for _ in range(2):
            await gate.leave()
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(entered) == 3 and gate.held == 2
        for _ in range(2):
            await gate.leave()
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(entered) == 5
        for _ in range(2):
            await gate.leave()
        await asyncio.wait_for(asyncio.gather(*ws), 1)
        assert sorted(entered) == list(range(6))
        for _ in range(gate.held):
            await gate.leave()
        assert gate.held == 0 and gate._enter_waiters == 0

    asyncio.run(go())


def test_a_worker_cancelled_while_waiting_for_room_leaves_the_gate_consistent():
    async def go():
        gate = Gate(2, stop=asyncio.Event())
        await gate.enter()
        await gate.enter()
        a = asyncio.ensure_future(gate.enter())
        b = asyncio.ensure_future(gate.enter())
        await asyncio.sleep(0)
        assert gate._enter_waiters == 2
        a.cancel()
        await asyncio.sleep(0)
        await gate.leave()                     # room for one: b, not the cancelled a
        await asyncio.wait_for(b, 1)
        assert a.cancelled() and gate.held == 2 and gate._enter_waiters == 0
        # a waiter notified and cancelled in the same step does not swallow the room
        c = asyncio.ensure_future(gate.enter())
        d = asyncio.ensure_future(gate.enter())
        await asyncio.sleep(0)
        await gate.leave()
        c.cancel()
        await asyncio.wait_for(d, 1)
        assert gate.held == 2
        await gate.leave()
        await gate.leave()
        assert gate.held == 0 and gate._enter_waiters == 0
        # the room waiters: cancelled while waiting, the count goes back
        gate.begin(); gate.begin()
        r = asyncio.ensure_future(gate.wait_room())
        await asyncio.sleep(0)
        assert gate._room_waiters == 1
        r.cancel()
        await asyncio.sleep(0)
        assert gate._room_waiters == 0
        gate.end(); gate.end()
        assert gate.sending == 0

    asyncio.run(go())


def test_a_stop_lets_every_waiting_worker_through_the_gate():
    async def go():
        stop = asyncio.Event()
        gate = Gate(1, stop=stop)
        await gate.enter()
        waiters = [asyncio.ensure_future(gate.enter()) for _ in range(5)]
        gate.begin()
        rooms = [asyncio.ensure_future(gate.wait_room()) for _ in range(3)]
        await asyncio.sleep(0)
        stop.set()
        await gate.wake_all()
        await asyncio.wait_for(asyncio.gather(*waiters, *rooms), 1)

    asyncio.run(go())


# ------------------------------------------------------------------ without uvloop; SIGINT on uvloop
def test_the_executor_runs_on_asyncios_loop_when_uvloop_is_not_installed(ws, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)        # `import uvloop` raises ImportError
    seen = []
    orig = asyncio.run
    monkeypatch.setattr(asyncio, "run", lambda coro, **kw: seen.append(1) or orig(coro, **kw))
    p = planned(ws, tmp_path, 12)
    emu = Emu(ws)
    s = emu.run(ws, p, concurrency=4)
    assert seen == [1] and s.sent == 12 and s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 12}


class SignalAt(CommitMidRun):
    def __init__(self, app, at, sig):
        super().__init__(app, at, lambda: os.kill(os.getpid(), sig))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_run_interrupts_cleanly_and_records_what_was_in_flight(ws, tmp_path, sig):
    # on uvloop where installed (engine.run_loop), on asyncio's loop where not: the same outcome
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    p = planned(ws, tmp_path, 60)
    emu = Emu(ws)
    transport = SignalAt(emu.app, 10, sig)
    s = emu.run(ws, p, concurrency=4, transport=transport, handle_signals=True)
    assert s.outcome == "interrupted" and s.signal == signal.Signals(sig).name
    led = ledger(ws, p.plan_id)
    assert "in_flight" not in led and "unknown" not in led          # the requests in flight finished
    assert led["sent"] == s.sent == len(emu.accepted()) >= 10 and led["planned"] == 60 - led["sent"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    # resumable: the next run sends the rest, nobody twice
    s2 = emu.run(ws, p, concurrency=4)
    assert s2.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 60}
    toks = [x.token for x in emu.accepted()]
    assert len(toks) == len(set(toks)) == 60


# ------------------------------------------------------------------ idle-campaign marks
from migrator.plan import make_plan                                    # noqa: E402
from _plan import AS_OF, BASE_SPEC, estate, lib, tok                     # noqa: E402
from test_execute_run import _Inject                                     # noqa: E402

LATER = {"code": 2300055, "message": "Cannot send now, retry in about 30 min",
         "error_data": {"remaining_seconds": 1800}}


def _many_pages(ws, tmp_path, pages: int, per_page: int):
    toks, pg, content = [], [], []
    for p in range(pages):
        pid = f"P{p + 1}"
        pg.append([pid, f"Shop {p}", "US", "111", "USD"])
        content.append(lib(pid, f"d{p}", "Deals", {"text": f"Deals {p}!"}))
        toks += [tok(p * per_page + i, page=pid) for i in range(per_page)]
    estate(ws, tmp_path / "in", toks, pages=pg, content=content)
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 10000000"))
    return make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)


def test_many_small_campaigns_some_told_later_all_go_once_in_the_same_run(ws, tmp_path):
    p = _many_pages(ws, tmp_path, 1000, 2)
    assert len(p.campaigns) == 1000
    emu = Emu(ws)
    t0 = emu.clock()
    later = {3, 50, 51, 299, 598, 1500, 1999}
    s = emu.run(ws, p, concurrency=8, transport=_Inject(emu.transport(), LATER, later))
    assert s.outcome == "done" and s.rescheduled == len(later), (s.outcome, s.reasons)
    assert ledger(ws, p.plan_id) == {"sent": 2000}
    toks = [x.token for x in emu.accepted()]
    assert len(toks) == len(set(toks)) == 2000
    assert 1800 <= emu.clock() - t0 < 3 * 3600        # waited for "later", not for a day


BUDGET = {"code": 2300054, "message": "The daily budget of the ad account was reached"}
WARM = {"code": 2300000, "message": "The campaign is warming up"}


@pytest.mark.parametrize("err", [BUDGET, WARM], ids=["budget-2300054", "warmup-2300000"])
def test_a_campaign_paused_while_the_others_are_marked_idle_resumes_and_the_run_ends_done(ws, tmp_path, err):
    p = _many_pages(ws, tmp_path, 20, 3)
    emu = Emu(ws)
    s = emu.run(ws, p, concurrency=4, transport=_Inject(emu.transport(), err, {30, 31}))
    assert s.outcome == "done", (s.outcome, s.reasons, s.waiting_for)
    assert ledger(ws, p.plan_id) == {"sent": 60}
    toks = [x.token for x in emu.accepted()]
    assert len(toks) == len(set(toks)) == 60


def test_a_campaign_stopped_by_2300053_while_marked_idle_is_closed_and_the_rest_go(ws, tmp_path):
    p = _many_pages(ws, tmp_path, 10, 3)
    emu = Emu(ws)
    stop = {"code": 2300053, "message": "The campaign's lifetime budget was reached"}
    s = emu.run(ws, p, concurrency=4, transport=_Inject(emu.transport(), stop, {29}))
    led = ledger(ws, p.plan_id)
    assert s.outcome == "done" and "planned" not in led and "in_flight" not in led, (s.outcome, led)
    assert led["sent"] == len(emu.accepted()) and led["sent"] + led.get("skipped", 0) + led.get("failed", 0) == 30


class _LaterAt(_Inject):
    """Meta says "this person later" (2300036, `remaining_seconds`: no campaign pause) to the sends of the tokens in `toks`, once each; the
    emulator answers the rest. Remembers when (virtual clock) each token's send was accepted."""

    def __init__(self, emu, toks, seconds):
        super().__init__(emu.transport(), {"code": 2300036, "message": "Cannot send to this person now",
                                           "error_data": {"remaining_seconds": seconds}}, set())
        self.emu, self.toks, self.told, self.when = emu, set(toks), set(), {}

    async def handle_async_request(self, request):
        if request.url.path.endswith("/messages"):
            t = json.loads(await request.aread())["messenger_delivery_data"]["subscription_token"]
            if t in self.toks and t not in self.told:
                self.told.add(t)
                return httpx.Response(400, json={"error": {"type": "OAuthException", **self.error}})
            r = await self.inner.handle_async_request(request)
            if r.status_code == 200:
                self.when[t] = self.emu.clock()
            return r
        return await self.inner.handle_async_request(request)


def test_a_row_that_falls_due_while_its_campaign_is_marked_idle_goes_when_due_not_after_the_others(ws, tmp_path):
    # P1 has one row, told "this person later" (~2 min; the campaign stays ready); P2 keeps sending at 1/s for 10 min. P1 is marked idle
    # (nothing of it due) while P2 sends, so no idle wait clears the mark: only its not_before
    # passing can. The row goes about when its time comes, not after P2's last send.
    toks = [tok(0)] + [tok(i, page="P2") for i in range(1, 601)]
    estate(ws, tmp_path / "in", toks, pages=[["P1", "Shop One", "US", "111", "USD"],
                                             ["P2", "Shop Two", "US", "111", "USD"]],
           content=[lib("P1", "d", "Deals", {"text": "Deals!"}), lib("P2", "d2", "Deals", {"text": "More deals"})])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 10000000"))
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    emu = Emu(ws)
    t0 = emu.clock()
    first = "TOKEN000000SECRET"
    transport = _LaterAt(emu, [first], 120)
    s = emu.run(ws, p, concurrency=2, rate=1.0, transport=transport, commit_interval=0)   # results committed at once (the committer sleeps on the wall clock)
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 601}, (s.outcome, s.reasons)
    assert first in transport.told
    waited = transport.when[first] - t0
    assert 120 <= waited < 200, f"the deferred row went {waited:.0f} s in (due after 120 s, the run took {emu.clock() - t0:.0f} s)"


def test_an_opt_out_committed_while_the_run_sleeps_for_a_deferred_row_reaches_nobody(ws, tmp_path):
    # the only row left is deferred ("this person later", 2 min); the run waits for it (idle marks
    # cleared, one claim after the wait). During that sleep another connection commits the person's stop.
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    last = "TOKEN000004SECRET"
    transport = _LaterAt(emu, [last], 120)
    hooks = _stops(tmp_path, emu, [last])
    commit = _commit_stops(ws, hooks)
    done = []

    async def sleep(seconds):
        if not done and emu.clock() > 0 and transport.told:
            done.append(emu.clock())
            commit()
        await emu.sleep(seconds)

    s = execute_plan(ws, p, execute=True, transport=transport, base_url="http://emulator.test",
                     access_token="sys-token-SECRET", clock=emu.clock, sleep=sleep, concurrency=2, commit_interval=0)
    assert done, "the run never slept"
    led = rows(ws, p.plan_id)
    assert last not in transport.when and led[last][0] == "skipped", led[last]
    assert s.outcome == "done" and s.sent == 4


class _ThrottleAt(_Inject):
    def __init__(self, emu, at):
        super().__init__(emu.transport(), {"code": 613, "message": "Calls to this api have exceeded the rate limit.",
                                           "error_data": {"remaining_seconds": 300}}, {at})


def test_a_sigterm_during_a_throttle_pause_stops_at_once_with_nothing_left_in_flight(ws, tmp_path):
    p = planned(ws, tmp_path, 40)
    emu = Emu(ws)
    transport = _ThrottleAt(emu, 6)
    sent = []

    async def sleep(seconds):
        if seconds >= 60 and not sent:          # the pause: every worker waits it out
            sent.append(len(emu.accepted()))
            os.kill(os.getpid(), signal.SIGTERM)
        await emu.sleep(seconds)

    s = execute_plan(ws, p, execute=True, transport=transport, base_url="http://emulator.test",
                     access_token="sys-token-SECRET", clock=emu.clock, sleep=sleep, concurrency=8,
                     handle_signals=True)
    assert sent and s.outcome == "interrupted" and s.signal == "SIGTERM"
    led = ledger(ws, p.plan_id)
    assert "in_flight" not in led and "unknown" not in led, led
    assert led["sent"] == len(emu.accepted()) == s.sent and led["sent"] + led["planned"] == 40
    assert len(emu.accepted()) == sent[0] and transport.n == sent[0] + 1   # no request left after the signal
