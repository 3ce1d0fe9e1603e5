"""A set-up refusal at send time (terms, payment, region, permission) stops that page once, with
preflight's guidance, marks no subscriber, and the page resumes once the set-up is fixed."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from migrator.emulator import EmulatorConfig, EmulatorTransport, VirtualClock, create_app, load_subscribers_workspace
from migrator.execute import execute_plan
from migrator.execute.outcomes import decide
from migrator.graph import error_from_envelope
from _exec import AFTER_DAY_ONE
from _preflight import ACT_BR, ACT_US, PAGE_BR, PAGE_US, healthy, two_pages


class Run:
    def __init__(self, ws, assets):
        self.clock = VirtualClock(AFTER_DAY_ONE)
        cfg = EmulatorConfig(warmup_seconds=0)
        cfg.clock = self.clock
        self.app = create_app(cfg, subscribers=load_subscribers_workspace(ws).subscribers, assets=assets)
        self.messages: list[str] = []

    async def sleep(self, s):
        self.clock.advance(s)
        await asyncio.sleep(0)

    def __call__(self, ws, plan, **kw):
        return execute_plan(ws, plan, execute=True, transport=EmulatorTransport(self.app),
                            base_url="http://emulator.test", access_token="sys-token-SECRET", clock=self.clock,
                            sleep=self.sleep, notify=self.messages.append, concurrency=8, **kw)


def _rows(ws, plan_id):
    return ws.conn.execute("SELECT c.page_id, e.state, COUNT(*) FROM exec_sends e JOIN exec_campaigns c "
                           "ON c.plan_id = e.plan_id AND c.campaign_key = e.campaign_key WHERE e.plan_id = ? "
                           "GROUP BY 1, 2 ORDER BY 1, 2", (plan_id,)).fetchall()


def test_ad_account_without_terms_stops_its_page_once_and_marks_no_subscriber(ws, tmp_path):
    plan, _ = two_pages(ws, tmp_path, n=30)
    assets = healthy()
    assets.ad_accounts[ACT_BR].terms_accepted = False
    run = Run(ws, assets)
    s = run(ws, plan)
    assert s.outcome == "stopped"
    assert len(s.page_stops) == 1 and s.page_stops[0]["page_id"] == PAGE_BR and s.page_stops[0]["code"] == 2300067
    assert "terms" in s.error and "onboarding" in s.hint and "business admin" in s.hint
    stops = [m for m in run.messages if "stopped" in m]
    assert len(stops) == 1 and PAGE_BR in stops[0] and "No subscriber is marked" in stops[0]
    # the other page sent everything; this page's sends all stay planned: no failure, no skip
    assert _rows(ws, plan.plan_id) == [(PAGE_US, "sent", 30), (PAGE_BR, "planned", 30)]
    assert ws.conn.execute("SELECT COUNT(*) FROM mm_feedback").fetchone()[0] == 0
    assert s.failed == 0 and s.skipped == 0
    # fixed by the business: the same command sends the page's subscribers, once each
    assets.ad_accounts[ACT_BR].terms_accepted = True
    s2 = run(ws, plan)
    assert s2.outcome == "done" and s2.page_stops == []
    assert _rows(ws, plan.plan_id) == [(PAGE_US, "sent", 30), (PAGE_BR, "sent", 30)]
    assert len(run.app.state.emulator.state.sends) == 60


@pytest.mark.parametrize("setup, code", [
    (lambda a: setattr(a.pages[PAGE_US], "terms_accepted", False), 2300066),
    (lambda a: setattr(a.businesses["9001"], "terms_accepted", False), 2300013),
    (lambda a: setattr(a.ad_accounts[ACT_US], "funding_source", False), 2300011),
    (lambda a: setattr(a.ad_accounts[ACT_US], "business_country_code", "DE"), 2300030),
    (lambda a: setattr(a.pages[PAGE_US], "country", "JP"), 2300031),
    (lambda a: setattr(a.pages[PAGE_US], "business", "9002"), 2300039),
])
def test_each_setup_refusal_stops_only_its_page(ws, tmp_path, setup, code):
    plan, _ = two_pages(ws, tmp_path, n=5)
    assets = healthy()
    setup(assets)
    s = Run(ws, assets)(ws, plan)
    assert [(p["page_id"], p["code"]) for p in s.page_stops] == [(PAGE_US, code)]
    assert _rows(ws, plan.plan_id) == [(PAGE_US, "planned", 5), (PAGE_BR, "sent", 5)]


def test_app_terms_stop_every_page():
    plan_err = error_from_envelope({"error": {"code": 2300019, "message": "The app has not accepted the terms."}})
    v = decide(plan_err, attempts=1, warmup_codes=frozenset(), campaign_age=10_000, warmup_limit=0)
    assert v.kind == "stop_page" and v.state == "planned" and v.mm_state is None


def test_2300069_as_lifetime_budget_is_not_a_setup_stop():
    err = error_from_envelope({"error": {"code": 2300069, "message": "The campaign's lifetime budget has been reached"}})
    v = decide(err, attempts=1, warmup_codes=frozenset(), campaign_age=10_000, warmup_limit=0)
    assert v.kind == "stop_campaign"
    err = error_from_envelope({"error": {"code": 2300069, "message": "Required terms of service not signed"}})
    assert decide(err, attempts=1, warmup_codes=frozenset(), campaign_age=10_000, warmup_limit=0).kind == "stop_page"


class _RefuseCreation(httpx.AsyncBaseTransport):
    """Meta refuses campaign creation in one ad account with a set-up code (region / terms at creation)."""

    def __init__(self, inner, act, code):
        self.inner, self.act, self.code, self.n = inner, act, code, 0

    async def handle_async_request(self, request):
        if request.method == "POST" and request.url.path.endswith(f"act_{self.act}/message_campaign"):
            self.n += 1
            return httpx.Response(400, json={"error": {"type": "OAuthException", "code": self.code,
                                                       "message": "The ad account is not in a supported region."}})
        return await self.inner.handle_async_request(request)


def test_setup_refusal_at_campaign_creation_stops_only_that_page(ws, tmp_path):
    plan, _ = two_pages(ws, tmp_path, n=5)
    run = Run(ws, healthy())
    t = _RefuseCreation(EmulatorTransport(run.app), ACT_BR, 2300030)
    s = execute_plan(ws, plan, execute=True, transport=t, base_url="http://emulator.test",
                     access_token="sys-token-SECRET", clock=run.clock, sleep=run.sleep, notify=run.messages.append)
    assert s.outcome == "stopped" and [(p["page_id"], p["code"]) for p in s.page_stops] == [(PAGE_BR, 2300030)]
    assert t.n == 1
    assert _rows(ws, plan.plan_id) == [(PAGE_US, "sent", 5), (PAGE_BR, "planned", 5)]
