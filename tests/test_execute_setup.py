"""Campaign set-up runs several campaigns at once, and still creates each exactly once."""

from __future__ import annotations

import asyncio

import httpx

from migrator.execute import engine
from _exec import Emu, ledger, planned
from _plan import lib, tok


class Overlap(httpx.AsyncBaseTransport):
    """Forwards to the emulator after yielding to the loop, and counts creates in flight at once."""

    def __init__(self, inner):
        self.inner, self.now, self.most, self.creates = inner, 0, 0, 0

    async def handle_async_request(self, request):
        create = request.method == "POST" and request.url.path.endswith("/message_campaign")
        if create:
            self.now += 1
            self.creates += 1
            self.most = max(self.most, self.now)
        try:
            for _ in range(3):
                await asyncio.sleep(0)      # let other set-ups start: the overlap a 150 ms Meta gives
            return await self.inner.handle_async_request(request)
        finally:
            if create:
                self.now -= 1


def _pages(n):
    return [[f"P{i}", f"Shop {i}", "US", "111", "USD"] for i in range(1, n + 1)]


def test_campaigns_are_set_up_several_at_a_time_and_each_is_created_once(ws, tmp_path):
    n = 12
    tokens = [tok(i, page=f"P{i % n + 1}") for i in range(5 * n)]
    content = [lib(f"P{i}", f"deals{i}", "Deals", {"text": f"Deals {i}!"}) for i in range(1, n + 1)]
    p = planned(ws, tmp_path, tokens=tokens, pages=_pages(n), content=content)
    keys = {c.key for c in p.campaigns}
    assert len(keys) == n
    emu = Emu(ws)
    wire = Overlap(emu.transport())
    s = emu.run(ws, p, transport=wire)
    assert 1 < wire.most <= engine.SETUP_CONCURRENCY
    created = list(emu.emulator.state.campaigns.values())
    assert len(created) == n                          # one per planned campaign, none twice
    assert len({c.name for c in created}) == n
    assert ledger(ws, p.plan_id).get("sent") == len(tokens)
    assert s.sent == len(tokens)

    again = Overlap(emu.transport())                  # a second run reuses, creates nothing
    emu.run(ws, p, transport=again)
    assert len(emu.emulator.state.campaigns) == n
