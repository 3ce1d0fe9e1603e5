"""Issue 16.7 (emulator side), 16.10, 16.11, 16.12: the emulator's own checks, Meta's wire
details, budgets in the ad account's own day, every documented code reachable, page tokens."""

from __future__ import annotations

import ast
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from _emu import ACT, PAGE, client_for, make
from migrator.emulator import EmulatorConfig, Subscriber, SyncEmulatorTransport, VirtualClock, create_app
from migrator.emulator.config import FaultProfile
from migrator.emulator.texts import MESSAGES
from migrator.graph import GraphError

TEXT = {"text": "New stock is in."}


def raw(app, method, path, token="sys-token", **kw):
    with httpx.Client(transport=SyncEmulatorTransport(app), base_url="http://graph.test") as h:
        return h.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)


def campaign(app, **body):
    r = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign", json={"name": "c", "page_id": PAGE, **body})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def send(app, cid, token="tok-us-1", message=TEXT, **extra):
    return raw(app, "POST", f"/v24.0/act_{ACT}/messages", json={
        "message_id": cid, "messenger_delivery_data": {"subscription_token": token}, "message": message, **extra})


# --- 16.10: the emulator's checks are its own -------------------------------------------------

def test_the_emulator_does_not_use_the_converters_validator():
    for f in (Path(__file__).resolve().parents[1] / "migrator" / "emulator").glob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = getattr(node, "module", None) or ""
                names = [a.name for a in node.names]
                assert not mod.startswith("migrator.convert") and not any(
                    n.startswith("migrator.convert") for n in names), f"{f} imports the converter"


def test_the_emulator_catches_what_an_old_converter_let_through():
    """Card without image, 640 emoji, a postback button: the converter once passed all three."""
    app, emu, clock = make()
    cid = campaign(app, lifetime_budget=3000)
    no_image = {"attachment": {"type": "template", "payload": {"template_type": "generic",
                                                                "elements": [{"title": "Hat", "subtitle": "x"}]}}}
    assert send(app, cid, message=no_image).json()["error"]["code"] == 2300022
    assert send(app, cid, message={"text": "\U0001F600" * 640}).json()["error"]["code"] == 100
    pb = {"attachment": {"type": "template", "payload": {"template_type": "button", "text": "t",
                                                         "buttons": [{"type": "postback", "title": "A", "payload": "A"}]}}}
    err = send(app, cid, message=pb).json()["error"]
    assert (err["code"], err["message"]) == (2300023, "Invalid button type. Valid button types are: web_url")


# --- 16.11: wire details ---------------------------------------------------------------------

def test_mm_errors_carry_user_title_and_message_but_parameter_errors_do_not():
    app, emu, clock = make()
    cid = campaign(app, lifetime_budget=3000)
    err = send(app, cid, token="tok-fr").json()["error"]
    assert err["code"] == 2300032 and err["error_user_title"] == "Region not supported"
    assert err["error_user_msg"] == MESSAGES[2300032]
    bad = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign", json={"page_id": PAGE}).json()["error"]
    assert bad["code"] == 100 and "error_user_title" not in bad


def test_throttles_80004_with_2446079_and_2300079_for_campaign_creation():
    app, emu, clock = make(account_calls_per_window=2)
    campaign(app, lifetime_budget=3000)
    raw(app, "GET", f"/v24.0/act_{ACT}/ads")
    ads = raw(app, "GET", f"/v24.0/act_{ACT}/ads").json()["error"]
    assert (ads["code"], ads["error_subcode"]) == (80004, 2446079)
    create = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign",
                 json={"name": "x", "page_id": PAGE, "lifetime_budget": 3000}).json()["error"]
    assert create["code"] == 2300079 and create["error_data"]["remaining_seconds"] > 0


def test_every_documented_code_is_reachable_through_a_fault_profile():
    from migrator.graph.classify import load_table
    documented = sorted({c for (c, sub) in load_table().exact if 2300000 <= c <= 2399999})
    assert {2300003, 2300007, 2300028, 2300030, 2300031, 2300052} <= set(documented)
    from migrator.emulator.app import _CREATION_CODES
    for code in documented:
        app, emu, clock = make(faults=FaultProfile(codes={code: 1.0}))
        if code in _CREATION_CODES:
            r = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign",
                    json={"name": "c", "page_id": PAGE, "lifetime_budget": 3000})
        else:
            emu.config.faults.codes = {}
            cid = campaign(app, lifetime_budget=3000)
            emu.config.faults.codes = {code: 1.0}
            r = send(app, cid, token="tok-us-2")
        assert r.json()["error"]["code"] == code, code
        assert r.json()["error"]["message"] == MESSAGES[code]


def test_fault_profile_refuses_an_undocumented_code(tmp_path):
    from migrator.emulator import load_fault_profile
    from migrator.errors import InputError
    f = tmp_path / "faults.toml"
    f.write_text("[codes]\n2300999 = 0.1\n")
    with pytest.raises(InputError, match="not a documented"):
        load_fault_profile(f)
    f.write_text("[codes]\n2300028 = 0.5\n[webhooks]\nclick_rate = 0.2\ndelivery_failed_rate = 0.1\n")
    p, _ = load_fault_profile(f)
    assert p.codes == {2300028: 0.5} and p.click_rate == 0.2 and p.delivery_failed_rate == 0.1


def test_delivery_failed_and_click_webhooks(tmp_path):
    hooks = tmp_path / "hooks.jsonl"
    subs = [Subscriber(token=f"t{i}", page_id=PAGE, region="US", psid=f"p{i}") for i in range(40)]
    clock = VirtualClock()
    cfg = EmulatorConfig(warmup_seconds=0, clock=clock, webhooks_path=hooks, read_rate=1.0,
                         faults=FaultProfile(delivery_failed_rate=0.3, click_rate=0.5))
    app = create_app(cfg, subscribers=subs)
    cid = campaign(app, lifetime_budget=300000)
    for i in range(40):
        assert send(app, cid, token=f"t{i}").status_code == 200
    app.state.emulator.close()
    events = [json.loads(line)["entry"][0]["changes"][0] for line in hooks.read_text().splitlines()]
    fields = {e["field"] for e in events}
    assert {"marketing_message_delivery_failed", "marketing_message_clicks"} <= fields
    failed = next(e["value"] for e in events if e["field"] == "marketing_message_delivery_failed")
    assert set(failed) == {"app_id", "business_id", "page_id", "messenger_subscription_token", "timestamp",
                           "error_message", "message_id"}
    click = next(e["value"] for e in events if e["field"] == "marketing_message_clicks")
    assert "marketing_message_tracking_id" not in click and "app_id" not in click and "mid" in click
    # a failed delivery is never also delivered
    delivered = {e["value"]["messenger_subscription_token"] for e in events
                 if e["field"] == "marketing_message_deliveries"}
    assert not delivered & {e["value"]["messenger_subscription_token"] for e in events
                            if e["field"] == "marketing_message_delivery_failed"}


def test_listing_has_token_expiry_and_honours_or_refuses_every_filter():
    subs = [Subscriber(token="a", page_id=PAGE, psid="p1", token_expiry=2145916800000),
            Subscriber(token="b", page_id=PAGE, psid="p1"), Subscriber(token="c", page_id=PAGE, psid="p2")]
    app, emu, clock = make(subscribers=subs)
    items = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens").json()["data"]
    assert [i["token_expiry_timestamp"] for i in items] == [2145916800000, 0, 0]
    dedupe = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens",
                 params={"do_not_return_duplicates": "true"}).json()["data"]
    assert [i["notification_messages_token"] for i in dedupe] == ["a", "c"]
    for name, value in (("custom_audience_ids", "1,2"), ("opt_in_source", "CTM"), ("since", "2026-01-01"),
                        ("until", "2026-01-01"), ("subscriber_tag_ids", "9")):
        r = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens", params={name: value})
        assert r.status_code == 400 and name in r.json()["error"]["message"]
    none_yet = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens",
                   params={"has_received_marketing_message": "true"}).json()["data"]
    assert none_yet == []


def test_min_conversation_gap_is_enforced_from_organic_activity():
    subs = [Subscriber(token="chatty", page_id=PAGE, region="US", psid="p", last_organic_at=1_800_000_000 - 100)]
    app, emu, clock = make(subscribers=subs)
    cid = campaign(app, lifetime_budget=3000)
    assert send(app, cid, token="chatty", min_conversation_gap_seconds=3600).json()["error"]["code"] == 2300052
    assert send(app, cid, token="chatty", min_conversation_gap_seconds=50).status_code == 200


# --- 16.7: budgets in the emulator -----------------------------------------------------------

def _at(iso: str, tz: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_daily_budget_resets_at_the_ad_accounts_own_midnight_and_allows_plus_75_percent():
    subs = [Subscriber(token=f"t{i}", page_id=PAGE, region="US", psid=f"p{i}") for i in range(30)]
    clock = VirtualClock(_at("2027-03-10T20:00:00", "America/Los_Angeles"))   # 04:00 UTC next day
    cfg = EmulatorConfig(warmup_seconds=0, clock=clock, cost_per_message=100,
                         account_timezones={ACT: "America/Los_Angeles"})
    app = create_app(cfg, subscribers=subs)
    cid = campaign(app, daily_budget=400)
    codes = [send(app, cid, token=f"t{i}").status_code for i in range(10)]
    assert codes.count(200) == 7          # 400 a day, +75 % on a single day: 700
    assert send(app, cid, token="t20").json()["error"]["code"] == 2300054
    clock.set(_at("2027-03-10T23:59:00", "America/Los_Angeles"))   # next UTC day, same account day
    assert send(app, cid, token="t21").json()["error"]["code"] == 2300054
    clock.set(_at("2027-03-11T00:00:30", "America/Los_Angeles"))   # the account's new day
    assert send(app, cid, token="t22").status_code == 200


def test_weekly_cap_is_seven_daily_budgets():
    subs = [Subscriber(token=f"t{i}", page_id=PAGE, region="US", psid=f"p{i}") for i in range(80)]
    clock = VirtualClock(_at("2027-03-07T01:00:00", "UTC"))        # a Sunday
    app = create_app(EmulatorConfig(warmup_seconds=0, clock=clock, cost_per_message=100),
                     subscribers=subs)
    cid = campaign(app, daily_budget=400)
    sent = 0
    for day in range(7):
        clock.set(_at(f"2027-03-{7 + day:02d}T01:00:00", "UTC"))
        for i in range(10):
            sent += send(app, cid, token=f"t{day * 10 + i}").status_code == 200
    assert sent == 28          # 7 x 400: the +75 % days borrow from the rest of the week


def test_minimum_budgets_for_an_account_whose_currency_is_documented():
    app, emu, clock = make(account_currencies={ACT: "USD"})
    low = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign",
              json={"name": "c", "page_id": PAGE, "daily_budget": 99}).json()["error"]
    assert low["code"] == 100 and "minimum daily budget of 100" in low["message"]
    life = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign",
               json={"name": "c", "page_id": PAGE, "lifetime_budget": 2999}).json()["error"]
    assert "3000" in life["message"]
    assert campaign(app, lifetime_budget=3000) and campaign(app, daily_budget=100)


def test_the_emulator_follows_a_rules_override(tmp_path):
    from migrator.rules import load_rules
    f = tmp_path / "rules.toml"
    f.write_text("mm_cadence_hours = 24\nmm_start_max_days_ahead = 7\nmm_text_max_chars = 20\n"
                 "mm_daily_budget_overspend_percent = 25\n")
    rules = load_rules(f)
    clock = VirtualClock()
    subs = [Subscriber(token=f"t{i}", page_id=PAGE, region="US", psid=f"p{i}") for i in range(10)]
    app = create_app(EmulatorConfig(warmup_seconds=0, clock=clock, rules=rules, cost_per_message=100),
                     subscribers=subs)
    late = raw(app, "POST", f"/v24.0/act_{ACT}/message_campaign",
               json={"name": "c", "page_id": PAGE, "daily_budget": 400, "start_time": int(clock()) + 8 * 86400})
    assert late.json()["error"]["code"] == 100 and "7 days" in late.json()["error"]["message"]
    cid = campaign(app, daily_budget=400)
    assert send(app, cid, token="t0", message={"text": "x" * 21}).json()["error"]["code"] == 100
    assert send(app, cid, token="t0").status_code == 200
    clock.advance(13 * 3600)
    assert send(app, cid, token="t0").json()["error"]["code"] == 2300035   # 24 h cadence
    assert [send(app, cid, token=f"t{i}").status_code for i in range(1, 6)].count(200) == 4  # 400 + 25 %


# --- 16.12: a Page token reads only its own Page ---------------------------------------------

def test_a_page_token_lists_only_its_own_page():
    app, emu, clock = make(page_tokens={PAGE: "page-111-token", "222": "page-222-token"})
    ok = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens", token="page-111-token")
    assert ok.status_code == 200 and ok.json()["data"]
    wrong = raw(app, "GET", f"/v24.0/{PAGE}/notification_message_tokens", token="page-222-token")
    assert wrong.status_code == 400
    assert (wrong.json()["error"]["code"], wrong.json()["error"]["error_subcode"]) == (100, 33)
    assert "page-222-token" not in wrong.text
