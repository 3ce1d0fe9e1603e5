"""Pacing, pauses and stops (13.5), budgets in the ad account's day (14.5), warm-up polling (14.6).

Everything runs on an injected clock: the emulator's virtual clock and a sleep that advances it.
Where a test must show that something does NOT wait, the sleep blocks for good and the test bounds
how long it may take.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.execute import ExecOptions, execute_plan_async
from migrator.execute.outcomes import THROTTLE_CODES, decide
from migrator.execute.pacing import Pacer, budget_resume_at, next_day_start, warmup_poll_delay
from migrator.graph import NO_RETRY, AsyncGraphClient, error_from_envelope
from migrator.plan import make_plan
from _exec import AFTER_DAY_ONE, Emu, ledger, planned
from _hyp import examples
from _plan import AS_OF, BASE_SPEC, estate, lib, tok, ts


class VClock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _forever(seconds: float) -> None:
    """A sleep that lasts as long as any pause could (it never ends by itself)."""
    await asyncio.Event().wait()


class Meta(httpx.AsyncBaseTransport):
    """Meta's stand-in around the emulator: answers chosen errors, the ad account's zone, and counts sends."""

    def __init__(self, emu, *, errors=None, zone=None):
        self.inner, self.emu = emu.transport(), emu
        self.errors = errors or {}          # n-th send (1-based) -> (status, error dict), or a callable
        self.zone = zone
        self.sends = 0
        self.send_times: list[float] = []

    async def handle_async_request(self, request):
        path = request.url.path
        if request.method == "GET" and path.rstrip("/").split("/")[-1].startswith("act_") and self.zone:
            if self.zone == "refuse":          # the token may not read the ad account
                return httpx.Response(400, json={"error": {"code": 100, "error_subcode": 33, "type": "GraphMethodException",
                                                           "message": "Unsupported get request."}})
            return httpx.Response(200, json={"id": path.rstrip("/").split("/")[-1], "timezone_name": self.zone})
        if path.endswith("/messages"):
            self.sends += 1
            self.send_times.append(self.emu.clock())
            e = self.errors(request) if callable(self.errors) else self.errors.get(self.sends)
            if e is not None:
                status, err = e
                return httpx.Response(status, json={"error": {"type": "OAuthException", **err}})
        return await self.inner.handle_async_request(request)


def _two_pages(ws, tmp_path, n=5):
    toks = [tok(i) for i in range(n)] + [tok(i, page="P2") for i in range(n, 2 * n)]
    estate(ws, tmp_path / "in", toks, pages=[["P1", "Shop One", "US", "111", "USD"],
                                             ["P2", "Shop Two", "US", "111", "USD"]],
           content=[lib("P1", "d", "Deals", {"text": "Deals!"}), lib("P2", "d2", "Deals", {"text": "More deals"})])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC)
    return make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)


def _all_day(ws, tmp_path, n):
    """`n` US tokens whose send window is the whole day (so a budget-day resume is not held by it)."""
    estate(ws, tmp_path / "in", [tok(i) for i in range(n)])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace('window = "09:00-17:00"', 'window = "00:00-24:00"'))
    return make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)


def _times_by_page(emu) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for s in emu.accepted():
        out.setdefault(s.page_id, []).append(s.time)
    return out


# ---------------------------------------------------------------------------------------------- stop
def test_a_worker_waiting_in_a_throttle_pause_stops_at_once():
    async def go():
        stop = asyncio.Event()
        p = Pacer(None, clock=VClock(), sleep=_forever, stop=stop)
        p.pause(60, "error 2300078")
        waiting = asyncio.ensure_future(p.acquire())
        await asyncio.sleep(0.01)
        assert not waiting.done()                  # it is in the pause
        stop.set()
        return await asyncio.wait_for(waiting, 1.0)

    assert asyncio.run(go()) is False              # told the caller not to send


def test_ctrl_c_during_a_throttle_pause_ends_the_run_within_a_second(ws, tmp_path):
    p = planned(ws, tmp_path, 8)
    emu = Emu(ws)
    meta = Meta(emu, errors={1: (400, {"code": 2300078, "message": "Send rate limit exceeded",
                                       "error_data": {"remaining_seconds": 57}})})

    async def go():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        stopped_at: list[float] = []

        def notify(msg):
            if msg.startswith("pause"):          # Ctrl-C arrives during the pause
                stopped_at.append(time.monotonic())
                loop.call_soon(stop.set)

        async def slow(seconds):     # a pause that takes its time (1.5 s stand for the 57 s), unless stopped
            await asyncio.sleep(1.5)
            emu.clock.advance(seconds)

        client = AsyncGraphClient("sys-token-SECRET", base_url="http://emulator.test", transport=meta,
                                  retry=NO_RETRY)
        try:
            s = await execute_plan_async(
                ws, p, client=client, opts=ExecOptions(execute=True, concurrency=4), clock=emu.clock,
                sleep=slow, notify=notify, stop=stop)
        finally:
            await client.aclose()
        return s, time.monotonic() - stopped_at[0]

    s, took = asyncio.run(go())
    assert took < 1.0 and s.outcome == "interrupted"
    assert "in_flight" not in ledger(ws, p.plan_id) and meta.sends == 1


# ---------------------------------------------------------------------------------------------- how long
def test_metas_remaining_seconds_wins_over_the_tables_floor(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    t0 = emu.clock()
    meta = Meta(emu, errors={1: (400, {"code": 2300078, "message": "Send rate limit exceeded",
                                       "error_data": {"remaining_seconds": 3}})})
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert s.sent == 5 and ledger(ws, p.plan_id) == {"sent": 5}
    assert 3 <= meta.send_times[1] - t0 < 5                  # 3 s as Meta said, not the table's 60 s
    assert emu.clock() - t0 < 5
    assert "pause 3 s: every send: error 2300078 (Meta's remaining_seconds)" in notes
    assert s.pauses == {"all": 1} and s.throttle_pauses == 1 and s.attempted == 6


def test_the_tables_floor_holds_where_meta_gives_no_figure(ws, tmp_path):
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws)
    t0 = emu.clock()
    meta = Meta(emu, errors={1: (400, {"code": 2300078, "message": "Send rate limit exceeded"})})
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert s.sent == 3 and meta.send_times[1] - t0 >= 60
    assert any(n.startswith("pause 60 s: every send: error 2300078") for n in notes)


# ---------------------------------------------------------------------------------------------- what waits
def test_a_transient_503_pauses_only_that_request(ws, tmp_path):
    p = _two_pages(ws, tmp_path)
    emu = Emu(ws)
    t0 = emu.clock()
    meta = Meta(emu, errors={1: (503, {"code": 2, "message": "Service temporarily unavailable",
                                       "is_transient": True})})
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert ledger(ws, p.plan_id) == {"sent": 10}
    times = sorted(x.time for x in emu.accepted())
    assert times[:9] == [t0] * 9 and times[9] > t0      # nine went at once; only the refused one waited
    assert s.pauses == {"request": 1} and s.throttle_pauses == 0
    assert any(n.startswith("pause") and "only: error 2" in n for n in notes)


def test_a_campaign_level_retry_pauses_only_that_campaign(ws, tmp_path):
    p = _two_pages(ws, tmp_path)
    emu = Emu(ws)
    t0 = emu.clock()
    # the first send of the run (P1's campaign comes first) is refused "can't send now" for that campaign
    meta = Meta(emu, errors={1: (400, {"code": 2300057, "message": "Cannot send now, retry later",
                                       "error_data": {"remaining_seconds": 900}})})
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert ledger(ws, p.plan_id) == {"sent": 10}
    by = _times_by_page(emu)
    assert by["P2"] == [t0] * 5                              # the other campaign never waited
    assert min(by["P1"]) >= t0 + 900                         # that one waited Meta's 15 min
    assert s.pauses == {"campaign": 1}
    assert any(n.startswith("pause 15 min: campaign c1 only: error 2300057") for n in notes)


def test_a_start_time_in_the_future_pauses_only_that_campaign_until_its_start(ws, tmp_path):
    p = _two_pages(ws, tmp_path)
    emu = Emu(ws)
    t0 = emu.clock()
    start = int(t0) + 1800                      # within the recipients' send window
    later = p.model_copy(update={"campaigns": [c.model_copy(update={"start_time": start}) if c.page_id == "P1" else c
                                               for c in p.campaigns]})
    # a plan made with that start: the workspace keeps the same copy as the file (or it is stale)
    ws.conn.execute("UPDATE plans SET body = ? WHERE plan_id = ?", (later.to_file_text(), p.plan_id))
    notes: list[str] = []
    s = emu.run(ws, later, concurrency=1, notify=notes.append)   # the emulator itself answers 2300033
    assert ledger(ws, p.plan_id) == {"sent": 10}
    by = _times_by_page(emu)
    assert by["P2"] == [t0] * 5
    assert min(by["P1"]) == start                           # not 10 min later, not after every campaign
    assert s.pauses == {"campaign": 1}
    assert any("error 2300033: the campaign starts at" in n for n in notes)


# ---------------------------------------------------------------------------------------------- budgets
def test_next_day_start_is_the_ad_accounts_own_midnight():
    la = "America/Los_Angeles"
    assert next_day_start(ts("2026-03-03T05:00:00Z"), la) == ts("2026-03-03T08:00:00Z")     # PST
    assert next_day_start(ts("2026-03-08T09:00:00Z"), la) == ts("2026-03-09T07:00:00Z")     # DST began
    assert next_day_start(ts("2026-03-03T05:00:00Z"), None) == ts("2026-03-04T00:00:00Z")   # unknown: UTC
    assert next_day_start(ts("2026-03-03T05:00:00Z"), "Asia/Kolkata") == ts("2026-03-03T18:30:00Z")
    for t in range(ts("2026-01-01T00:00:00Z"), ts("2027-01-01T00:00:00Z"), 3 * 3600 + 7):
        for zone in (la, "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "Pacific/Kiritimati"):
            n = next_day_start(t, zone)
            assert t < n <= t + 25 * 3600 + 1


def test_a_budget_stop_just_after_the_accounts_midnight_is_retried_soon_not_tomorrow():
    la = "America/Los_Angeles"
    midnight = ts("2026-03-03T08:00:00Z")
    assert budget_resume_at(midnight + 30, la) == midnight + 330               # clocks may differ
    assert budget_resume_at(midnight + 601, la) == ts("2026-03-04T08:00:00Z")  # a real stop: next day
    assert budget_resume_at(midnight - 30, la) == midnight


def test_a_daily_budget_stop_waits_for_the_pacific_accounts_next_day(ws, tmp_path):
    p = _all_day(ws, tmp_path, 6)
    emu = Emu(ws)
    assert emu.clock() == AFTER_DAY_ONE == ts("2026-03-02T20:00:00Z")   # 12:00 in Los Angeles
    refused = {3}
    meta = Meta(emu, zone="America/Los_Angeles",
                errors=lambda r: (400, {"code": 2300054, "message": "The campaign's daily budget has been reached."})
                if meta.sends in refused else None)
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert ledger(ws, p.plan_id) == {"sent": 6}
    times = sorted(x.time for x in emu.accepted())
    assert times[:2] == [AFTER_DAY_ONE] * 2
    assert times[2] == ts("2026-03-03T08:00:00Z")   # midnight in Los Angeles, not 2026-03-04 00:00 UTC
    assert s.pauses == {"campaign": 1}
    assert any("daily budget reached; the ad account's next day starts at 2026-03-03 00:00 America/Los_Angeles"
               in n for n in notes)
    row = ws.conn.execute("SELECT timezone_name, source FROM exec_campaign_zones").fetchone()
    assert row == ("America/Los_Angeles", "act_111.timezone_name")


def test_the_emulators_pacific_budget_day_and_the_executor_agree(ws, tmp_path):
    """The emulator keeps the budget day in the account's zone too; the executor resumes at that midnight."""
    p = _all_day(ws, tmp_path, 6)
    la = "America/Los_Angeles"
    emu = Emu(ws, cost_per_message=400, account_timezones={"111": la})   # 1000 (+75 %) a day: 4 sends
    meta = Meta(emu)                                 # the emulator answers act_111?fields=timezone_name itself
    s = emu.run(ws, p, transport=meta, concurrency=1)
    assert ledger(ws, p.plan_id) == {"sent": 6} and s.pauses == {"campaign": 1}
    times = sorted(x.time for x in emu.accepted())
    assert times[:4] == [AFTER_DAY_ONE] * 4 and times[4:] == [ts("2026-03-03T08:00:00Z")] * 2
    assert meta.sends == 7                           # one refusal, no request wasted before the new day


def test_an_unknown_account_zone_is_said_and_utc_is_assumed(ws, tmp_path):
    p = _all_day(ws, tmp_path, 6)
    emu = Emu(ws, cost_per_message=400)             # daily budget 1000 (+75 %): 4 a day
    notes: list[str] = []
    s = emu.run(ws, p, transport=Meta(emu, zone="refuse"), concurrency=1, notify=notes.append)
    assert ledger(ws, p.plan_id) == {"sent": 6}
    assert AFTER_DAY_ONE == ts("2026-03-02T20:00:00Z")
    assert min(x.time for x in emu.accepted()[4:]) == ts("2026-03-03T00:00:00Z")
    assert any("ad account 111: time zone not readable" in n and "00:00 UTC" in n for n in notes)
    assert s.pauses == {"campaign": 1}


# ---------------------------------------------------------------------------------------------- warm-up
def test_warmup_poll_backs_off_from_seconds_to_the_rules_cap():
    assert [warmup_poll_delay(n, first=5, cap=600) for n in range(9)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert warmup_poll_delay(7, first=5, cap=600, fixed=2) == 2


def test_a_five_second_warmup_sends_within_seconds_of_readiness(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws, warmup_seconds=5)
    meta = Meta(emu)
    t0 = emu.clock()
    notes: list[str] = []
    s = emu.run(ws, p, transport=meta, concurrency=1, notify=notes.append)
    assert s.sent == 5 and s.outcome == "done"
    first = min(x.time for x in emu.accepted())
    assert t0 + 5 <= first <= t0 + 15                     # not 600 s later
    assert s.attempted == meta.sends                      # warm-up probes are requests too
    assert any("next check in 5 s" in n for n in notes)


def test_warmup_poll_option_sets_the_pace(ws, tmp_path):
    p = planned(ws, tmp_path, 2)
    emu = Emu(ws, warmup_seconds=9)
    meta = Meta(emu)
    t0 = emu.clock()
    s = emu.run(ws, p, transport=meta, concurrency=1, warmup_poll=2)
    assert s.sent == 2
    probes = [t - t0 for t in meta.send_times]
    assert probes[:6] == [0, 2, 4, 6, 8, 10] and s.attempted == meta.sends


def test_the_warmup_poll_is_capped_by_the_rules(ws, tmp_path):
    p = planned(ws, tmp_path, 1)
    emu = Emu(ws, warmup_seconds=3000)
    meta = Meta(emu)
    t0 = emu.clock()
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text("warmup_poll_max_seconds = 100\n")
    from migrator.rules import load_rules

    s = emu.run(ws, p, transport=meta, rules=load_rules(rules_file))
    assert s.sent == 1
    gaps = [b - a for a, b in zip(meta.send_times, meta.send_times[1:])]
    assert gaps[:6] == [5, 10, 20, 40, 80, 100] and max(gaps) == 100
    assert meta.send_times[-1] - t0 <= 3000 + 100


# ---------------------------------------------------------------------------------------------- the rule itself
_WARMUP = frozenset({2300003, 2300012, 2300041, 2300028})


@settings(max_examples=examples(300), deadline=None)
@given(code=st.one_of(st.integers(2300000, 2300080), st.sampled_from(sorted(THROTTLE_CODES) + [1, 2, 10, 100])),
       remaining=st.one_of(st.none(), st.integers(1, 7200)), transient=st.booleans(), attempts=st.integers(1, 9))
def test_a_retry_waits_metas_figure_at_the_scope_of_what_it_concerns(code, remaining, transient, attempts):
    text = {2300078: "send rate limit", 2300079: "campaign creation rate limit"}.get(code, "")
    body = {"error": {"code": code, "message": text, "is_transient": transient,
                      **({"error_data": {"remaining_seconds": remaining}} if remaining else {})}}
    v = decide(error_from_envelope(body), attempts=attempts, warmup_codes=_WARMUP, campaign_age=10**6,
               warmup_limit=10800)
    if v.kind != "retry":
        return
    if remaining:
        assert v.wait == remaining and v.meta_wait            # Meta's own figure, not the table's floor
    else:
        assert v.wait and v.wait > 0 and not v.meta_wait
    expected = "all" if code in THROTTLE_CODES else "campaign" if code >= 2300000 else "request"
    assert v.scope == expected and v.throttle == (expected == "all")
