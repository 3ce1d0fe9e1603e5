"""`migrator preflight` as a person runs it: against `migrator emulator serve --assets FIXTURE` on a
loopback socket; and Meta's own SDK (facebook-business, optional) reading the same objects from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from _preflight import ACT_BR, ACT_US, PAGE_BR, PAGE_TOKENS, PAGE_US, SYS_TOKEN, token_map, two_pages

ASSETS = f"""
[token]
permissions = ["ads_management", "pages_messaging", "paid_marketing_messages"]

[businesses."9001"]
name = "Shop US Inc"
[businesses."9002"]
name = "Loja BR Ltda"

[ad_accounts."{ACT_US}"]
business = "9001"
currency = "USD"
timezone_name = "America/Los_Angeles"
business_country_code = "US"

[ad_accounts."{ACT_BR}"]
business = "9002"
currency = "BRL"
business_country_code = "BR"
funding_source = false

[pages."{PAGE_US}"]
business = "9001"
country = "US"
access_token = "{PAGE_TOKENS[PAGE_US]}"

[pages."{PAGE_BR}"]
business = "9002"
country = "BR"
access_token = "{PAGE_TOKENS[PAGE_BR]}"
"""


@pytest.fixture
def server(tmp_path):
    (tmp_path / "assets.toml").write_text(ASSETS)
    (tmp_path / "subs.jsonl").write_text(json.dumps({"token": "t1", "page_id": PAGE_US, "region": "US"}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "emulator", "serve", "--port", "0", "--warmup", "0",
                             "--subscribers", str(tmp_path / "subs.jsonl"), "--assets", str(tmp_path / "assets.toml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MIGRATOR_DB": str(tmp_path / "unused.db")})
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
        yield "http://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_preflight_command_text_json_and_exit_codes(ws, tmp_path, cli, server, monkeypatch):
    _, plan_path = two_pages(ws, tmp_path)
    ws.close()
    monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", SYS_TOKEN)
    tokens = token_map(tmp_path, PAGE_TOKENS)
    r = cli("preflight", plan_path, "--base-url", server, "--page-tokens", tokens)
    assert r.exit_code == 1, r.output
    out = r.output
    assert "FAIL payment method" in out and f"act_{ACT_BR}" in out and "business admin:" in out
    assert f"page {PAGE_BR} (Loja BR): cannot send yet: funding_source" in out
    assert "not read - terms of service" in out and "2300067" in out
    for secret in [SYS_TOKEN, *PAGE_TOKENS.values()]:
        assert secret not in out
    j = cli("preflight", plan_path, "--base-url", server, "--page-tokens", tokens, "--json")
    assert j.exit_code == 1
    data = json.loads(j.output)
    assert data["ok"] is False and data["counts"]["fail"] == 1
    assert {p["page_id"]: p["state"] for p in data["pages"]} == {PAGE_US: "pass", PAGE_BR: "fail"}
    tz = next(c for c in data["checks"] if c["check"] == "ad_account_budget_day" and c["subject"] == ACT_US)
    assert tz["status"] == "pass" and "America/Los_Angeles" in tz["detail"]


def test_preflight_without_a_token_or_with_a_shared_map_is_refused(tmp_path, ws, cli, monkeypatch):
    _, plan_path = two_pages(ws, tmp_path)
    ws.close()
    monkeypatch.delenv("MIGRATOR_ACCESS_TOKEN", raising=False)
    r = cli("preflight", plan_path, "--base-url", "http://127.0.0.1:9")
    assert r.exit_code == 1 and "MIGRATOR_ACCESS_TOKEN" in r.output
    monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", SYS_TOKEN)
    r = cli("preflight", plan_path, "--page-tokens", token_map(tmp_path, PAGE_TOKENS, mode=0o644))
    assert r.exit_code == 1 and "chmod 600" in r.output and PAGE_TOKENS[PAGE_US] not in r.output
    # nothing answers: said once, exit 1 (not "all unknown, exit 0"), without waiting out every read's retries
    r = cli("preflight", plan_path, "--base-url", "http://127.0.0.1:9", "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and data["unreachable"] and data["counts"]["pass"] == 0
    assert SYS_TOKEN not in r.output


def test_facebook_business_sdk_reads_the_same_objects(server):
    pytest.importorskip("facebook_business")
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.adobjects.page import Page
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    session = FacebookSession(access_token=SYS_TOKEN)
    session.GRAPH = server
    api = FacebookAdsApi(session, api_version="v24.0")
    acct = AdAccount(f"act_{ACT_BR}", api=api).api_get(fields=[
        AdAccount.Field.account_status, AdAccount.Field.currency, AdAccount.Field.timezone_name,
        AdAccount.Field.funding_source_details, AdAccount.Field.business, AdAccount.Field.business_country_code])
    assert acct[AdAccount.Field.account_status] == 1 and acct[AdAccount.Field.currency] == "BRL"
    assert acct[AdAccount.Field.business]["id"] == "9002"
    assert acct.get(AdAccount.Field.funding_source_details) is None      # the unpaid account
    us = AdAccount(f"act_{ACT_US}", api=api).api_get(fields=["timezone_name", "funding_source_details"])
    assert us["timezone_name"] == "America/Los_Angeles"
    assert us["funding_source_details"]["display_string"]
    page = Page(PAGE_US, api=api).api_get(fields=["name", "business", "location"])
    assert page["business"]["id"] == "9001" and page["location"]["country_code"] == "US"


def test_facebook_business_sdk_batch_creates_and_sends_through_the_emulator(server):
    """A partner's existing tool: the SDK's `new_batch()` (one POST / with up to 50 calls) creates a
    campaign and sends through the emulator; a refused call fails alone, the others succeed."""
    pytest.importorskip("facebook_business")
    from facebook_business.adobjects.adaccount import AdAccount
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    session = FacebookSession(access_token=SYS_TOKEN)
    session.GRAPH = server
    api = FacebookAdsApi(session, api_version="v24.0")
    acct = AdAccount(f"act_{ACT_US}", api=api)
    cid = acct.create_message_campaign(params={"name": "sdk batch", "page_id": PAGE_US,
                                               "daily_budget": 100000})["id"]
    ok, bad = [], []
    batch = api.new_batch()
    for token in ("t1", "not-a-subscriber"):
        acct.create_message(params={"message_id": cid, "messenger_delivery_data": {"subscription_token": token},
                                    "message": {"text": "New stock is in."}},
                            batch=batch, success=lambda r: ok.append(r.json()),
                            failure=lambda r: bad.append(r.json()))
    assert batch.execute() is None                     # no call came back null
    assert len(ok) == 1 and ok[0]["marketing_message_tracking_id"]
    assert len(bad) == 1 and bad[0]["error"]["code"] != 0


def test_the_readmes_rehearsal_serves_the_partners_own_pages_and_preflight_passes(ws, db_path, tmp_path, cli,
                                                                                    monkeypatch):
    """README: `migrator emulator serve --port 8765 --warmup 5 --webhooks receipts.jsonl &`, then preflight.
    Without --assets the emulator serves the workspace's pages as pages.csv describes them (a BR business
    billing in BRL), not a US/USD default that fails every page placed elsewhere."""
    _, plan_path = two_pages(ws, tmp_path)
    ws.close()
    proc = subprocess.Popen([sys.executable, "-m", "migrator", "--db", str(db_path), "emulator", "serve",
                             "--port", "0", "--warmup", "5", "--webhooks", str(tmp_path / "receipts.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
        url = "http://127.0.0.1:" + line.split("127.0.0.1:")[1].split()[0]
        monkeypatch.setenv("MIGRATOR_ACCESS_TOKEN", "rehearsal")
        r = cli("preflight", plan_path, "--base-url", url, "--json")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    data = json.loads(r.output)
    failed = [(c["check"], c["subject"]) for c in data["checks"] if c["status"] == "fail"]
    assert failed == [] and r.exit_code == 0, failed
    currency = next(c for c in data["checks"] if c["check"] == "ad_account_currency" and c["subject"].endswith(ACT_BR))
    assert "BRL" in currency["detail"]
