"""Attacks on concurrent campaign set-up: a page stopped while its other campaigns are being set up."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from migrator.execute.engine import execute_plan, execute_plan_async
from migrator.execute.summary import ExecOptions
from migrator.graph import NO_RETRY, AsyncGraphClient
from migrator.plan import make_plan, write_plan
from _exec import Emu, ledger, planned
from _plan import AS_OF, BASE_SPEC, estate, lib, spec_file, tok

PER_TOPIC = BASE_SPEC.replace("[campaign]", "[campaign]\nper = \"page_topic\"\nname = \"{page_name}: {topic}\"")


def _per_topic_plan(ws, tmp, tokens, pages, content):
    estate(ws, tmp / "in", tokens, pages=pages, content=content)
    p = make_plan(ws, spec_file(tmp / "spec", base=PER_TOPIC), as_of=AS_OF, clock=lambda: 1_772_000_000)
    write_plan(p, tmp / "plan.json")
    return p


def _refusal(code: int) -> httpx.Response:
    body = {"error": {"message": f"refused ({code})", "type": "OAuthException", "code": code,
                      "fbtrace_id": "X"}}
    return httpx.Response(400, json=body)


class PageRefusal(httpx.AsyncBaseTransport):
    """The create of campaigns named with `refuse_name` is refused at once with `code`; every other
    create is slow (a 150 ms Meta: other set-ups run meanwhile) and goes through."""

    def __init__(self, inner, refuse_name: str, code: int):
        self.inner, self.refuse_name, self.code = inner, refuse_name, code
        self.created: list[str] = []

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/message_campaign"):
            await request.aread()
            text = request.content.decode()
            if self.refuse_name in text:
                for _ in range(5):
                    await asyncio.sleep(0)      # other set-ups have their requests out by now
                return _refusal(self.code)
            for _ in range(20):
                await asyncio.sleep(0)
            resp = await self.inner.handle_async_request(request)
            self.created.append(text)
            return resp
        return await self.inner.handle_async_request(request)


def test_a_page_stopped_during_set_up_stays_stopped_for_its_campaigns_still_setting_up(ws, tmp_path):
    tokens = [tok(i, page="P1", topic="Deals" if i % 2 else "News") for i in range(10)] + \
             [tok(100 + i, page="P2") for i in range(5)]
    pages = [["P1", "Shop 1", "US", "111", "USD"], ["P2", "Shop 2", "US", "222", "USD"]]
    content = [lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P1", "news", "News", {"text": "News!"}),
               lib("P2", "deals2", "Deals", {"text": "Deals 2!"})]
    p = _per_topic_plan(ws, tmp_path, tokens, pages, content)
    p1 = [c for c in p.campaigns if c.page_id == "P1"]
    assert len(p1) == 2
    emu = Emu(ws)
    wire = PageRefusal(emu.transport(), json.dumps(p1[0].name)[1:-1], 2300066)
    s = emu.run(ws, p, transport=wire)
    states = dict(ws.conn.execute("SELECT campaign_key, state FROM exec_campaigns WHERE plan_id = ?",
                                  (p.plan_id,)).fetchall())
    assert states[p1[1].key] == "failed", states
    p1_sent = ws.conn.execute("SELECT COUNT(*) FROM exec_sends e JOIN exec_campaigns c USING (plan_id, campaign_key) "
                              "WHERE e.plan_id = ? AND c.page_id = 'P1' AND e.state != 'planned'",
                              (p.plan_id,)).fetchone()[0]
    assert p1_sent == 0, (p1_sent, s.to_json()["page_stops"])
    assert s.outcome == "stopped"


class Throttled(httpx.AsyncBaseTransport):
    """Every create is throttled (code 4: retry later); the requests are counted."""

    def __init__(self, inner):
        self.inner, self.requests = inner, 0

    async def handle_async_request(self, request):
        self.requests += 1
        if request.method == "POST" and request.url.path.endswith("/message_campaign"):
            return httpx.Response(400, json={"error": {"message": "Application request limit reached",
                                                       "type": "OAuthException", "code": 4}})
        return await self.inner.handle_async_request(request)


def test_ctrl_c_during_a_set_up_retry_sends_no_further_request(ws, tmp_path):
    p = planned(ws, tmp_path, 4)
    emu = Emu(ws)
    wire = Throttled(emu.transport())
    seen: list[int] = []

    async def go():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def notify(msg):
            if "retrying in" in msg and not seen:     # Ctrl-C during the set-up's backoff
                seen.append(wire.requests)
                loop.call_soon(stop.set)

        async def slow(seconds):
            await asyncio.sleep(0.5)
            emu.clock.advance(seconds)

        client = AsyncGraphClient("sys-token-SECRET", base_url="http://emulator.test", transport=wire,
                                  retry=NO_RETRY)
        t0 = time.monotonic()
        try:
            s = await execute_plan_async(ws, p, client=client, opts=ExecOptions(execute=True), clock=emu.clock,
                                         sleep=slow, notify=notify, stop=stop)
        finally:
            await client.aclose()
        return s, time.monotonic() - t0

    s, took = asyncio.run(go())
    assert seen and wire.requests == seen[0]          # no request left after the stop
    assert s.outcome == "interrupted" and took < 1.0
    assert not emu.emulator.state.campaigns
    # the campaign is not marked as one that could not be set up: the same command resumes
    state, error = ws.conn.execute("SELECT state, error FROM exec_campaigns WHERE plan_id = ?",
                                   (p.plan_id,)).fetchone()
    assert state != "failed", (state, error)


class NoId(httpx.AsyncBaseTransport):
    """The first create goes through at Meta, but its answer carries no id (a proxy's rewrite, a
    truncated body): the campaign exists, the executor cannot know its id from this answer."""

    def __init__(self, inner):
        self.inner, self.done = inner, False

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/message_campaign") and not self.done:
            self.done = True
            await self.inner.handle_async_request(request)
            return httpx.Response(200, json={"success": True})
        return await self.inner.handle_async_request(request)


def test_a_create_answered_without_an_id_is_found_again_by_name_not_a_traceback(ws, tmp_path):
    p = planned(ws, tmp_path, 5)
    emu = Emu(ws)
    s = emu.run(ws, p, transport=NoId(emu.transport()))
    assert len(emu.emulator.state.campaigns) == 1          # reused by name, not created twice
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 5}


class AccountRefusal(httpx.AsyncBaseTransport):
    """Every call about ad account `act` is refused with a set-up code (no payment method, say)."""

    def __init__(self, inner, act: str, code: int):
        self.inner, self.act, self.code = inner, act, code

    async def handle_async_request(self, request):
        if f"/act_{self.act}/" in request.url.path:
            return _refusal(self.code)
        return await self.inner.handle_async_request(request)


def test_a_set_up_refusal_of_the_ad_accounts_listing_stops_that_account_not_the_run(ws, tmp_path):
    tokens = [tok(i, page="P1") for i in range(4)] + [tok(100 + i, page="P2") for i in range(4)]
    pages = [["P1", "Shop 1", "US", "111", "USD"], ["P2", "Shop 2", "US", "222", "USD"]]
    content = [lib("P1", "deals", "Deals", {"text": "Deals!"}), lib("P2", "deals2", "Deals", {"text": "Deals 2!"})]
    p = planned(ws, tmp_path, tokens=tokens, pages=pages, content=content,
                extra='[[ad_accounts]]\nid = "222"\ncurrency = "USD"\nbusiness_country = "US"\ncost_per_message = 2\n')
    emu = Emu(ws)
    s = emu.run(ws, p, transport=AccountRefusal(emu.transport(), "111", 2300011))
    assert s.outcome == "stopped", (s.outcome, s.error)
    assert [x["page_id"] for x in s.page_stops] == ["P1"]
    sent_pages = {r[0] for r in ws.conn.execute(
        "SELECT c.page_id FROM exec_sends e JOIN exec_campaigns c USING (plan_id, campaign_key) "
        "WHERE e.plan_id = ? AND e.state = 'sent'", (p.plan_id,))}
    assert sent_pages == {"P2"}


class Boom(httpx.AsyncBaseTransport):
    """The create of campaigns named `name` fails with an unexpected error; the others are slow."""

    def __init__(self, inner, name: str):
        self.inner, self.name = inner, name.encode()

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/message_campaign"):
            bad = self.name in await request.aread()
            for _ in range(5 if bad else 30):
                await asyncio.sleep(0)            # the others' creates are out when it fails
            if bad:
                raise RuntimeError("boom")
        return await self.inner.handle_async_request(request)


def test_an_unexpected_error_in_one_set_up_lets_the_others_under_way_finish_before_it_is_raised(ws, tmp_path):
    import pytest

    n = 4
    tokens = [tok(i, page=f"P{i % n + 1}") for i in range(3 * n)]
    pages = [[f"P{i}", f"Shop {i}", "US", "111", "USD"] for i in range(1, n + 1)]
    content = [lib(f"P{i}", f"deals{i}", "Deals", {"text": f"Deals {i}!"}) for i in range(1, n + 1)]
    p = _per_topic_plan(ws, tmp_path, tokens, pages, content)
    emu = Emu(ws)
    with pytest.raises(RuntimeError):
        emu.run(ws, p, transport=Boom(emu.transport(), '"Shop 1: Deals"'))
    states = dict(ws.conn.execute("SELECT campaign_key, state FROM exec_campaigns WHERE plan_id = ?",
                                  (p.plan_id,)).fetchall())
    # the others' creates went through at Meta and were recorded, not abandoned half-way
    assert sorted(states.values()) == ["creating", "ready", "ready", "ready"], states
    assert len(emu.emulator.state.campaigns) == 3
    assert ws.conn.execute("SELECT COUNT(*) FROM exec_lock").fetchone()[0] == 0


class CreationThrottled(httpx.AsyncBaseTransport):
    """The first `n` creates are refused by the campaign-creation rate limit (2300079, 5 minutes)."""

    def __init__(self, inner, n: int):
        self.inner, self.n = inner, n

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith("/message_campaign") and self.n:
            self.n -= 1
            return httpx.Response(400, json={"error": {
                "message": "Campaign creation rate limit reached: too many campaigns created", "code": 2300079,
                "type": "OAuthException", "is_transient": True, "error_data": {"remaining_seconds": 300}}})
        return await self.inner.handle_async_request(request)


def test_a_long_set_up_backoff_keeps_the_lock_alive_so_a_second_execute_cannot_take_over(ws, tmp_path):
    import sqlite3

    from migrator.errors import LockHeldError
    from migrator.execute.lock import acquire

    p = planned(ws, tmp_path, 4)
    emu = Emu(ws)
    other = sqlite3.connect(str(ws.path), isolation_level=None, timeout=5)
    took_over: list[str] = []

    async def wall(seconds):       # `seconds` pass on the wall clock too: the lock's heartbeat ages
        emu.clock.advance(seconds)
        ws.conn.execute("UPDATE exec_lock SET heartbeat_at = heartbeat_at - ?", (int(seconds),))
        try:                                   # a tired engineer runs the same command in another terminal
            lock = acquire(other, p.plan_id)
        except LockHeldError:
            return
        took_over.append(lock.took_over or "")
        lock.release()

    s = execute_plan(ws, p, execute=True, transport=CreationThrottled(emu.transport(), 3),
                     base_url="http://emulator.test", access_token="sys-token-SECRET", clock=emu.clock, sleep=wall)
    other.close()
    assert took_over == []
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 4}
    assert len(emu.emulator.state.campaigns) == 1
