"""Attacks on the adaptive in-flight limit: throttling storms, with ambiguous answers mixed in."""

from __future__ import annotations

import httpx

from migrator.emulator import FaultProfile
from _exec import Emu, ledger
from test_execute_aimd import Latency, Sim, execute_simulated, plan_without_binding_budgets


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
    p = plan_without_binding_budgets(ws, tmp_path, n)
    emu = Emu(ws, **emu_kw)
    sim = Sim(emu.clock)
    meta = Watch(emu.transport(), sim, 0.150)
    return p, emu, meta, execute_simulated(ws, p, sim, meta)


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
