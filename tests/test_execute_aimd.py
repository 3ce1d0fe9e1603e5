"""The adaptive in-flight limit (issue 19.1): additive increase, multiplicative decrease.

The decision is a pure function (`aimd_next`: state and one answer in, new state out), tested
here case by case and with hypothesis over arbitrary answer sequences. Then the whole executor,
through `execute_plan_async`, against the in-process emulator with a low rate limit in a rolling
window and 150 ms of latency, on a virtual clock driven by a small discrete-event scheduler (no
wall-clock sleeps): the limit converges below the concurrency, the achieved rate is near the
account's limit, few requests are throttled, and every send goes exactly once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.execute import ExecOptions, execute_plan_async
from migrator.execute.pacing import (THROTTLE_DECREASE, USAGE_DECREASE, USAGE_FAST, USAGE_HIGH, USAGE_LOW, Aimd,
                                     Answer, aimd_next, usage_cut)
from migrator.emulator.usage_window import RollingWindow
from migrator.graph import NO_RETRY, AsyncGraphClient
from migrator.plan import make_plan
from _exec import Emu, ledger
from _hyp import examples
from _plan import AS_OF, BASE_SPEC, estate, tok


def clean(t=0.0, *, sent=None, pct=None, in_flight=64):
    return Answer(sent_at=t if sent is None else sent, now=t, usage_pct=pct, in_flight=in_flight)


def throttle(t=0.0, *, sent=None, pct=None):
    return Answer(sent_at=t if sent is None else sent, now=t, throttled=True, usage_pct=pct, in_flight=64)


# ---------------------------------------------------------------------------------------------- cases
def test_it_starts_at_the_configured_concurrency_and_never_exceeds_it():
    s = Aimd.start(64)
    assert s.limit == 64 and s.allowed == 64
    for i in range(100):
        s = aimd_next(s, clean(i))
    assert s.limit == 64


def test_a_throttle_halves_the_limit():
    s = aimd_next(Aimd.start(64), throttle(10.0))
    assert s.limit == 64 * THROTTLE_DECREASE and s.decreased_at == 10.0 and s.decreases == 1


def test_one_burst_of_throttled_answers_cuts_once_not_once_per_answer():
    s = Aimd.start(64)
    for i in range(64):      # 64 requests that all left before the first cut come back throttled
        s = aimd_next(s, throttle(10.0 + i * 0.001, sent=9.9))
    assert s.limit == 32 and s.decreases == 1
    s = aimd_next(s, throttle(11.0, sent=10.5))     # one sent after the cut: the new limit is too much too
    assert s.limit == 16 and s.decreases == 2


def test_a_clean_round_trip_adds_about_one():
    s = aimd_next(Aimd.start(64), throttle(1.0))      # 32
    s = aimd_next(s, throttle(2.0))                  # 16
    for i in range(16):                              # one round trip's answers, the limit in use
        s = aimd_next(s, clean(3.0 + i * 0.01, in_flight=16))
    assert 16.9 < s.limit < 17.1


def test_no_increase_while_the_limit_is_not_what_holds_the_run_back():
    s = aimd_next(Aimd.start(64), throttle(1.0))      # 32
    for i in range(200):
        s = aimd_next(s, clean(2.0 + i, in_flight=5))  # only 5 in flight: nothing to learn about 33
    assert s.limit == 32


def test_usage_near_100_cuts_while_it_climbs_and_holds_when_it_stops():
    s = Aimd.start(64)
    s = aimd_next(s, clean(1.0, pct=USAGE_HIGH))
    assert s.limit == 64 * USAGE_DECREASE and s.usage_mark == USAGE_HIGH
    held = aimd_next(s, clean(2.0, pct=USAGE_HIGH))    # not climbing any more: the cut worked
    assert held.limit == s.limit
    stale = aimd_next(s, clean(2.0, sent=0.5, pct=99.0))   # sent before the cut: already accounted for
    assert stale.limit == s.limit
    again = aimd_next(s, clean(2.0, pct=98.0))         # still climbing a round trip later
    assert again.limit == s.limit * usage_cut(98.0) and usage_cut(98.0) < USAGE_DECREASE   # steeper nearer 100


def test_usage_in_the_band_holds_below_it_grows_at_100_it_is_a_throttle():
    s = aimd_next(Aimd.start(64), throttle(1.0))      # 32
    assert aimd_next(s, clean(2.0, pct=(USAGE_LOW + USAGE_HIGH) / 2, in_flight=32)).limit == 32
    assert aimd_next(s, clean(2.0, pct=USAGE_LOW - 1, in_flight=32)).limit > 32
    assert aimd_next(s, clean(2.0, pct=100.0)).limit == 16


def test_a_window_filling_fast_caps_what_is_in_flight_to_the_room_left():
    s = Aimd.start(64)
    t = 0.0
    for i in range(16):                       # 0.5 % per answer: 200 calls fill the window
        t += 0.01
        s = aimd_next(s, clean(t, pct=70.0 + 0.5 * i))
    # at 77.5 % and 0.5 % per answer, 45 answers are left: no more than half of them in flight
    assert s.limit <= 0.5 * (100 - 77.5) / 0.5 + 1e-9 and s.decreases >= 1


def test_the_limit_never_goes_below_one():
    s = Aimd.start(3)
    for i in range(10):
        s = aimd_next(s, throttle(float(i)))
    assert s.limit == 1 and s.allowed == 1


# ---------------------------------------------------------------------------------------------- properties
answers = st.builds(
    lambda dt, lag, thr, pct, inf: (dt, lag, thr, pct, inf),
    st.floats(0, 5), st.floats(0, 2), st.booleans(),
    st.one_of(st.none(), st.floats(0, 150)), st.integers(0, 600))


def _run(max_limit, seq):
    s, t = Aimd.start(max_limit), 0.0
    for dt, lag, thr, pct, inf in seq:
        t += dt
        a = Answer(sent_at=t - lag, now=t, throttled=thr, usage_pct=pct, in_flight=inf)
        yield s, a, aimd_next(s, a)
        s = aimd_next(s, a)


@settings(max_examples=examples(300), deadline=None)
@given(max_limit=st.integers(1, 512), seq=st.lists(answers, max_size=80))
def test_every_decision_keeps_the_limit_between_one_and_the_maximum(max_limit, seq):
    for old, a, new in _run(max_limit, seq):
        assert 1 <= new.limit <= max_limit and 1 <= new.allowed <= max_limit
        assert new.max_limit == max_limit


@settings(max_examples=examples(300), deadline=None)
@given(max_limit=st.integers(1, 512), seq=st.lists(answers, max_size=80))
def test_every_throttle_decreases_and_none_increases(max_limit, seq):
    for old, a, new in _run(max_limit, seq):
        over = a.throttled or (a.usage_pct is not None and a.usage_pct >= 100)
        if over:
            assert new.limit <= old.limit                         # never more after a throttle
            if a.sent_at >= old.decreased_at and old.limit > 1:   # under the current limit: a cut
                assert new.limit < old.limit
                assert new.limit >= old.limit * THROTTLE_DECREASE  # multiplicative, never a collapse
        if a.usage_pct is not None and a.usage_pct >= USAGE_LOW and new.climb >= 0:
            assert new.limit <= old.limit                         # near the limit and not draining: never more


@settings(max_examples=examples(300), deadline=None)
@given(max_limit=st.integers(1, 512), seq=st.lists(answers, max_size=80))
def test_increases_are_additive_and_only_on_clean_answers(max_limit, seq):
    for old, a, new in _run(max_limit, seq):
        if new.limit > old.limit:
            draining = a.usage_pct is not None and new.climb < 0 and a.usage_pct < USAGE_HIGH
            assert not a.throttled and (a.usage_pct is None or a.usage_pct < USAGE_LOW or draining)
            assert a.in_flight >= old.allowed                     # the limit was in use
            # far from the top, or while the window drains: +1 per answer (doubling per round trip)
            far = a.usage_pct is not None and (a.usage_pct < USAGE_FAST or draining)
            assert new.limit - old.limit <= (1.0 if far else 1.0 / max(1.0, old.limit)) + 1e-9


@settings(max_examples=examples(200), deadline=None)
@given(max_limit=st.integers(2, 512), k=st.integers(1, 40))
def test_clean_answers_climb_back_to_the_maximum(max_limit, k):
    s = Aimd.start(max_limit)
    for i in range(k):
        s = aimd_next(s, throttle(float(i)))
    t = float(k)
    for _ in range(max_limit * max_limit + 10):
        t += 0.01
        s = aimd_next(s, clean(t, in_flight=max_limit))
        if s.limit >= max_limit:
            break
    assert s.limit == max_limit


# ---------------------------------------------------------------------------------------------- the emulator's window
def test_the_emulators_usage_window_rolls():
    w = RollingWindow(10.0)
    pcts = [w.count(100.0 + i * 0.1, 50)[0] for i in range(50)]      # 50 calls in 5 s
    assert pcts[-1] == 100.0
    pct, regain = w.count(105.0, 50)                                  # the 51st: over
    assert pct > 100 and 4.5 < regain <= 5.2                          # until the first calls leave
    assert w.count(111.0, 50)[0] < 100                                # they left: not a fixed reset
    assert w.count(200.0, 50)[0] == 2.0                               # all gone a window later


# ---------------------------------------------------------------------------------------------- through the executor
class Sim:
    """Virtual time for a whole asyncio run: sleeps wait on a heap; time jumps when nothing can run."""

    def __init__(self, clock):
        self.clock = clock
        self.timers: list = []
        self.seq = itertools.count()

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self.timers, (self.clock() + max(0.0, seconds), next(self.seq), fut))
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    async def drive(self, task: asyncio.Future) -> None:
        loop = asyncio.get_running_loop()
        while not task.done():
            for _ in range(10_000):           # let everything that can run, run (private, test only)
                await asyncio.sleep(0)
                if not loop._ready:          # type: ignore[attr-defined]
                    break
            while self.timers and self.timers[0][2].done():
                heapq.heappop(self.timers)
            if not self.timers:
                await asyncio.sleep(0.001)   # only wall-clock housekeeping (the committer) is waiting
                continue
            t = self.timers[0][0]
            if t > self.clock():
                self.clock.set(t)
            while self.timers and self.timers[0][0] <= t:
                fut = heapq.heappop(self.timers)[2]
                if not fut.done():
                    fut.set_result(None)


class Latency(httpx.AsyncBaseTransport):
    """Meta's round trip (150 ms of virtual time) in front of the emulator; counts what was refused."""

    def __init__(self, inner, sim: Sim, seconds: float):
        self.inner, self.sim, self.seconds = inner, sim, seconds
        self.requests = 0
        self.throttled = 0

    async def handle_async_request(self, request):
        await self.sim.sleep(self.seconds)
        r = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/messages"):
            self.requests += 1
            await r.aread()
            self.throttled += b"2300078" in r.content
        return r


def plan_without_binding_budgets(ws, tmp_path, n):
    """`n` US tokens and their plan, with a daily budget no send can reach."""
    estate(ws, tmp_path / "in", [tok(i) for i in range(n)])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 100000000"))
    return make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)


def execute_simulated(ws, p, sim: Sim, transport):
    """`execute_plan_async` at its default options through `transport`, on the simulation's virtual time."""

    async def go():
        client = AsyncGraphClient("sys-token-SECRET", base_url="http://emulator.test", transport=transport,
                                  retry=NO_RETRY)
        try:
            task = asyncio.ensure_future(execute_plan_async(
                ws, p, client=client, opts=ExecOptions(execute=True), clock=sim.clock, sleep=sim.sleep))
            await sim.drive(task)
            return task.result()
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_the_executor_converges_on_the_accounts_limit_with_few_throttles(ws, tmp_path):
    n, window, limit_calls = 2400, 10.0, 400          # the account allows 40 calls/s; 64 in flight would do 427/s
    p = plan_without_binding_budgets(ws, tmp_path, n)
    emu = Emu(ws, account_calls_per_window=limit_calls, window_seconds=window)
    sim = Sim(emu.clock)
    meta = Latency(emu.transport(), sim, 0.150)
    t0 = emu.clock()
    s = execute_simulated(ws, p, sim, meta)
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": n}
    toks = [x.token for x in emu.accepted()]
    assert len(toks) == n == len(set(toks))                              # exactly once, throttles and all
    limit_rate = limit_calls / window
    times = sorted(x.time - t0 for x in emu.accepted())
    # whole windows after the first (which starts empty: a whole window's burst is allowed there)
    k = int(times[-1] // window) - 1
    rate = sum(1 for t in times if window <= t < window * (k + 1)) / (window * k)
    assert k >= 3 and 0.9 * limit_rate <= rate <= 1.0 * limit_rate, rate
    assert meta.throttled / meta.requests < 0.01, (meta.throttled, meta.requests)
    assert s.in_flight_limit["max"] == 64
    assert s.in_flight_limit["decreases"] >= 1 and s.in_flight_limit["lowest"] < 10   # 40/s x 0.15 s = 6
