"""Attacks on the adaptive in-flight limit: throttling storms, with ambiguous answers mixed in."""

from __future__ import annotations

import asyncio

import httpx

from migrator.emulator import FaultProfile
from migrator.execute.engine import execute_plan_async
from migrator.execute.summary import ExecOptions
from migrator.graph import NO_RETRY, AsyncGraphClient
from migrator.plan import make_plan
from _exec import Emu, ledger
from _plan import AS_OF, BASE_SPEC, estate, tok
from test_execute_aimd import Latency, Sim


class Watch(Latency):
    """Latency, plus: every send request's time and every throttle's remaining_seconds."""

    def __init__(self, *a):
        super().__init__(*a)
        self.sent_times: list[float] = []
        self.blocked_until = 0.0
        self.early = 0          # send requests that left while Meta's remaining_seconds still ran

    async def handle_async_request(self, request):
        if request.url.path.endswith("/messages"):
            now = self.sim.clock()
            self.early += now < self.blocked_until - 1e-6
        r = await super().handle_async_request(request)
        if request.url.path.endswith("/messages"):
            await r.aread()
            if b"2300078" in r.content:
                import json
                rs = json.loads(r.content)["error"].get("error_data", {}).get("remaining_seconds")
                if rs:
                    self.blocked_until = max(self.blocked_until, self.sim.clock() + float(rs))
        return r


def _run(ws, tmp_path, n, **emu_kw):
    estate(ws, tmp_path / "in", [tok(i) for i in range(n)])
    spec = tmp_path / "spec.toml"
    spec.write_text(BASE_SPEC.replace("daily_budget = 1000", "daily_budget = 100000000"))
    p = make_plan(ws, spec, as_of=AS_OF, clock=lambda: 1_772_000_000)
    emu = Emu(ws, **emu_kw)
    sim = Sim(emu.clock)
    meta = Watch(emu.transport(), sim, 0.150)

    async def go():
        client = AsyncGraphClient("sys-token-SECRET", base_url="http://emulator.test", transport=meta,
                                  retry=NO_RETRY)
        try:
            task = asyncio.ensure_future(execute_plan_async(
                ws, p, client=client, opts=ExecOptions(execute=True), clock=emu.clock, sleep=sim.sleep))
            await sim.drive(task)
            return task.result()
        finally:
            await client.aclose()

    return p, emu, meta, asyncio.run(go())


def test_a_throttling_storm_with_ambiguous_answers_sends_nothing_twice_and_honours_metas_wait(ws, tmp_path):
    n = 600
    p, emu, meta, s = _run(ws, tmp_path, n, account_calls_per_window=150, window_seconds=10.0, seed=7,
                           faults=FaultProfile(throttle_burst_rate=0.01, throttle_burst_seconds=5.0,
                                               timeout_rate=0.02, reset_rate=0.02))
    toks = [x.token for x in emu.accepted()]
    assert len(toks) == len(set(toks))                       # nothing accepted twice
    led = ledger(ws, p.plan_id)
    assert led.get("sent", 0) + led.get("unknown", 0) == n and "in_flight" not in led
    assert led.get("sent", 0) <= len(toks)
    assert meta.early == 0, meta.early                       # no send inside Meta's remaining_seconds
    assert meta.throttled > 10 and s.in_flight_limit["lowest"] <= 2     # it was a storm
