"""Preflight against the in-process emulator: one test per check set up to fail it, and one where all pass."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.errors import InputError
from migrator.preflight import latest_page_states
from migrator.preflight.checks import Read, check_budget_day, check_permissions, page_state
from _hyp import examples
from _plan import tok, ts
from _preflight import (ACT_BR, ACT_US, BIZ_US, PAGE_BR, PAGE_TOKENS, PAGE_US, SYS_TOKEN, check, healthy,
                              status, token_map, two_pages)


@pytest.fixture
def planned(ws, tmp_path):
    return two_pages(ws, tmp_path)[1]


def _failed(report):
    return sorted((r.check, r.subject) for r in report.checks if r.status == "fail")


def _page(report, pid):
    return next(p for p in report.pages if p["page_id"] == pid)


def test_all_pass_when_everything_is_set_up(ws, tmp_path, planned):
    r = check(ws, planned, healthy(), tokens=PAGE_TOKENS, tmp=tmp_path)
    assert r.ok and r.exit_code == 0
    assert _failed(r) == []
    # every readable check passes; what Meta shows only on a send is said, not guessed
    assert {(x.check, x.status) for x in r.checks if x.readable} == {(x.check, "pass") for x in r.checks if x.readable}
    assert {x.check for x in r.checks if not x.readable} == {"terms_of_service", "campaign_population"}
    assert "cannot be read without sending" in status(r, "terms_of_service", PAGE_US).detail
    assert [p["state"] for p in r.pages] == ["pass", "pass"]
    assert len({x.check for x in r.checks}) == 13


def test_missing_mm_permission_fails_the_token_and_every_page(ws, tmp_path, planned):
    a = healthy()
    a.permissions = ("ads_management", "pages_messaging", "pages_show_list")
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "token_permissions")
    assert c.status == "fail" and "paid_marketing_messages or marketing_messages_messenger" in c.detail
    assert c.to_json()["who"] == "partner" and "App Review" in c.to_json()["action"]
    assert r.exit_code == 1
    assert all(p["state"] == "fail" and "token_permissions" in p["failed"] for p in r.pages)


def test_one_required_permission_is_enough_of_the_two_mm_ones(ws, tmp_path, planned):
    a = healthy()
    a.permissions = ("ads_management", "pages_messaging", "marketing_messages_messenger")
    assert status(check(ws, planned, a, tmp=tmp_path), "token_permissions").status == "pass"
    a.permissions = ("pages_messaging", "paid_marketing_messages")
    c = status(check(ws, planned, a, tmp=tmp_path), "token_permissions")
    assert c.status == "fail" and c.detail.startswith("missing: ads_management")


def test_ad_account_outside_the_tokens_assets(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_BR].visible = False
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "ad_account_access", ACT_BR)
    assert c.status == "fail" and "cannot see" in c.detail and c.to_json()["who"] == "business admin"
    assert _page(r, PAGE_BR)["state"] == "fail" and _page(r, PAGE_US)["state"] == "pass"
    # what depends on reading the account is unknown, not invented
    assert status(r, "funding_source", ACT_BR).status == "unknown"


def test_ad_account_not_active(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_US].account_status = 3
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "ad_account_status", ACT_US)
    assert c.status == "fail" and c.detail.startswith("UNSETTLED")
    assert c.to_json()["who"] == "business admin"
    a.ad_accounts[ACT_US].account_status = 2
    c = status(check(ws, planned, a, tmp=tmp_path), "ad_account_status", ACT_US)
    assert c.status == "fail" and c.detail.startswith("DISABLED") and c.to_json()["who"] == "Meta"


def test_currency_differs_from_the_plans(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_BR].currency = "USD"
    c = status(check(ws, planned, a, tmp=tmp_path), "ad_account_currency", ACT_BR)
    assert c.status == "fail" and "BRL" in c.detail and "USD" in c.detail
    assert c.to_json()["who"] == "partner"


def test_budget_day_of_the_accounts_time_zone(ws, tmp_path):
    # 4 New York recipients due on Mar 2 (14:00 UTC), 4 Tokyo recipients first eligible Mar 3 00:00 UTC:
    # two UTC days of 4 sends each, one America/New_York day of 8, for a budget paying 4 a day
    toks = [tok(i, page=PAGE_US, tz="America/New_York") for i in range(4)] + \
           [tok(10 + i, page=PAGE_US, tz="Asia/Tokyo", nea=str(ts("2026-03-03T00:00:00Z"))) for i in range(4)] + \
           [tok(100, page=PAGE_BR)]
    _, path = two_pages(ws, tmp_path, tokens=toks, extra=f'[pages."{PAGE_US}"]\ndaily_budget = 8\n')
    a = healthy()
    assert status(check(ws, path, a, tmp=tmp_path), "ad_account_budget_day", ACT_US).status == "pass"
    a.ad_accounts[ACT_US].timezone_name = "America/New_York"
    c = status(check(ws, path, a, tmp=tmp_path), "ad_account_budget_day", ACT_US)
    assert c.status == "fail"
    assert "8 sends planned on 2026-03-02 (America/New_York)" in c.detail and "pays for 4" in c.detail


def test_budget_day_pure():
    acct = Read(data={"timezone_name": "Asia/Kolkata"})
    # 23:00 UTC and 23:45 UTC of one UTC day: 04:30 and 05:15 of the next Kolkata day, both fit a cap of 2
    assert check_budget_day("1", acct, [("c1", 4, 2, [(82800, 1), (85500, 1)])]).status == "pass"
    # 18:15 UTC (23:45 IST day 1) and 18:30 UTC (00:00 IST day 2) split; three at 18:30 exceed a cap of 2
    assert check_budget_day("1", acct, [("c1", 4, 2, [(65700, 1), (66600, 3)])]).status == "fail"
    assert check_budget_day("1", acct, []).status == "pass"
    assert check_budget_day("1", Read(data={}), [("c1", 4, 2, [])]).status == "unknown"


def test_unpaid_ad_account(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_US].funding_source = False
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "funding_source", ACT_US)
    assert c.status == "fail" and "payment method" in c.detail and c.to_json()["who"] == "business admin"
    assert _page(r, PAGE_US)["failed"] == ["funding_source"]


def test_business_in_an_unsupported_region(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_US].business_country_code = "DE"
    c = status(check(ws, planned, a, tmp=tmp_path), "business_country", ACT_US)
    assert c.status == "fail" and "DE" in c.detail and "not an MM business country" in c.detail


def test_declared_business_country_disagrees_with_meta(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_US].business_country_code = "MX"      # allowed, but pages.csv says US
    c = status(check(ws, planned, a, tmp=tmp_path), "business_country", ACT_US)
    assert c.status == "fail" and "says US" in c.detail and c.to_json()["who"] == "partner"


def test_page_outside_the_tokens_assets(ws, tmp_path, planned):
    a = healthy()
    a.pages[PAGE_US].visible = False
    r = check(ws, planned, a, tmp=tmp_path)
    assert status(r, "page_access", PAGE_US).status == "fail"
    assert _page(r, PAGE_US)["state"] == "fail"


def test_page_and_ad_account_in_different_businesses(ws, tmp_path, planned):
    a = healthy()
    a.pages[PAGE_BR].business = BIZ_US
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "same_business", PAGE_BR)
    assert c.status == "fail" and f"business {BIZ_US}" in c.detail
    assert _failed(r) == [("same_business", PAGE_BR)]


def test_page_in_an_unsupported_region(ws, tmp_path, planned):
    a = healthy()
    a.pages[PAGE_US].country = "JP"
    c = status(check(ws, planned, a, tmp=tmp_path), "page_country", PAGE_US)
    assert c.status == "fail" and "JP" in c.detail


def test_page_without_location_is_unknown_not_failed(ws, tmp_path, planned):
    a = healthy()
    a.pages[PAGE_US].country = None
    r = check(ws, planned, a, tmp=tmp_path)
    c = status(r, "page_country", PAGE_US)
    assert c.status == "unknown" and not c.readable and "2300031" in c.detail
    assert r.ok


def test_page_token_of_another_page_and_missing_line(ws, tmp_path, planned):
    r = check(ws, planned, healthy(), tmp=tmp_path,
              tokens={PAGE_US: PAGE_TOKENS[PAGE_US], PAGE_BR: PAGE_TOKENS[PAGE_US]})
    c = status(r, "page_token", PAGE_BR)
    assert c.status == "fail" and f"belongs to {PAGE_US}" in c.detail
    assert status(r, "page_token", PAGE_US).status == "pass"
    r = check(ws, planned, healthy(), tmp=tmp_path, tokens={PAGE_US: PAGE_TOKENS[PAGE_US]})
    assert status(r, "page_token", PAGE_BR).status == "fail"
    # no map at all: said, not failed
    assert status(check(ws, planned, healthy(), tmp=tmp_path), "page_token", PAGE_BR).status == "unknown"


def test_page_token_map_must_be_private_and_is_never_echoed(ws, tmp_path, planned):
    p = token_map(tmp_path, PAGE_TOKENS, mode=0o644)
    from migrator.preflight import load_page_tokens

    with pytest.raises(InputError, match="readable by others") as e:
        load_page_tokens(p)
    assert e.value.hint == f"chmod 600 {p}"
    p.write_text(f"{PAGE_US} {PAGE_TOKENS[PAGE_US]}\n")
    p.chmod(0o600)
    with pytest.raises(InputError) as e:
        load_page_tokens(p)
    assert PAGE_TOKENS[PAGE_US] not in str(e.value) and ":1:" in str(e.value)


def test_terms_not_accepted_cannot_be_read_before_a_send(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_BR].terms_accepted = False
    a.pages[PAGE_US].terms_accepted = False
    r = check(ws, planned, a, tmp=tmp_path)
    assert r.ok                             # nothing to read: said, with the FAQ's guidance
    c = status(r, "terms_of_service", PAGE_BR).to_json()
    assert c["status"] == "unknown" and not c["readable"] and "onboarding" in c["action"]


def test_results_stored_without_tokens_and_latest_state_per_page(ws, tmp_path, planned):
    a = healthy()
    a.ad_accounts[ACT_US].funding_source = False
    check(ws, planned, a, tokens=PAGE_TOKENS, tmp=tmp_path)
    states = latest_page_states(ws.conn)
    assert states[PAGE_US]["state"] == "fail" and states[PAGE_US]["failed"] == ["funding_source"]
    assert states[PAGE_BR]["state"] == "pass"
    check(ws, planned, healthy(), tokens=PAGE_TOKENS, tmp=tmp_path)
    assert latest_page_states(ws.conn)[PAGE_US]["state"] == "pass"
    dump = "\n".join(ws.conn.iterdump())
    for secret in [SYS_TOKEN, *PAGE_TOKENS.values()]:
        assert secret not in dump


def test_a_spec_is_checked_before_any_plan(ws, tmp_path, planned):
    spec = tmp_path / "spec" / "spec.toml"
    a = healthy()
    a.ad_accounts[ACT_BR].currency = "USD"
    r = check(ws, spec, a, tmp=tmp_path)
    assert r.source == "spec" and r.plan_id is None
    assert status(r, "ad_account_currency", ACT_BR).status == "fail"
    assert {p["page_id"] for p in r.pages} == {PAGE_US, PAGE_BR}


def test_network_failure_is_unknown_not_fail():
    r = check_permissions(Read(error="ConnectError: refused"))
    assert r.status == "unknown" and r.readable
    assert page_state([r]) == "unknown"
    assert json.dumps(r.to_json())


@settings(max_examples=examples(60), deadline=None)
@given(mapping=st.dictionaries(st.from_regex(r"[0-9]{1,16}", fullmatch=True),
                               st.from_regex(r"[A-Za-z0-9_\-]{8,40}", fullmatch=True), max_size=5),
       junk=st.text(max_size=40))
def test_page_token_map_round_trips_and_bad_lines_never_echo_a_token(tmp_path_factory, mapping, junk):
    from migrator.preflight import load_page_tokens

    tmp = tmp_path_factory.mktemp("map")
    p = token_map(tmp, mapping)
    assert load_page_tokens(p) == mapping
    p.write_text("".join(f"{k}\t{v}\r\n" for k, v in mapping.items()) + junk + "\n", encoding="utf-8")
    try:
        got = load_page_tokens(p)
    except InputError as e:
        assert not any(v in str(e) for v in mapping.values())
    else:
        assert all(got[k] == v for k, v in mapping.items() if k in got)


def test_assets_fixture_errors_name_the_entry():
    from migrator.emulator.assets import Assets

    with pytest.raises(InputError, match=r'\[ad_accounts."1"\]: unknown key\(s\) currncy') as e:
        Assets.from_dict({"ad_accounts": {"1": {"currncy": "USD"}}})
    assert "currency" in e.value.hint
    with pytest.raises(InputError, match="unknown timezone_name"):
        Assets.from_dict({"ad_accounts": {"1": {"timezone_name": "Mars/Olympus"}}})
    with pytest.raises(InputError, match="unknown assets section"):
        Assets.from_dict({"faults": {}})


def test_a_spec_checks_only_pages_with_subscribers_to_migrate(ws, tmp_path, planned):
    from migrator.audit import run_audit
    from _plan import AS_OF, ingest

    ingest(ws, tmp_path / "more", pages=[["303000000000003", "Laden DE", "DE", "333", "EUR"]],
           tokens=[tok(900, page="303000000000003", country="DE", tz="Europe/Berlin")], name="de")
    run_audit(ws, as_of=AS_OF)
    assert ws.conn.execute("SELECT migrate FROM audit_pages WHERE page_id = '303000000000003'").fetchone() == (0,)
    r = check(ws, tmp_path / "spec" / "spec.toml", healthy(), tmp=tmp_path)
    assert {p["page_id"] for p in r.pages} == {PAGE_US, PAGE_BR}      # the DE page has nobody to move


def test_emulator_settings_and_assets_agree(ws, tmp_path, planned):
    """--account-timezone / account_currencies / --page-tokens shape what preflight reads, and an
    ad account's time zone in the assets is the day its daily budget resets on."""
    from migrator.emulator import EmulatorConfig, SyncEmulatorTransport, create_app
    from migrator.emulator.assets import Assets, AdAccount
    from migrator.graph import GraphClient

    cfg = EmulatorConfig(warmup_seconds=0, account_timezones={ACT_US: "America/Chicago"},
                         account_currencies={ACT_US: "MXN"}, page_tokens={PAGE_US: "tok-us-page"})
    app = create_app(cfg, assets=Assets(ad_accounts={ACT_BR: AdAccount(ACT_BR, timezone_name="America/Sao_Paulo")}))
    assert cfg.account_timezones[ACT_BR] == "America/Sao_Paulo"
    with GraphClient("x", base_url="http://e", transport=SyncEmulatorTransport(app)) as g:
        acct = g.call("GET", f"act_{ACT_US}", params={"fields": "currency,timezone_name"})
        assert (acct["currency"], acct["timezone_name"]) == ("MXN", "America/Chicago")
    with GraphClient("tok-us-page", base_url="http://e", transport=SyncEmulatorTransport(app)) as g:
        assert g.call("GET", "me")["id"] == PAGE_US


def test_business_country_from_our_own_data_only_is_unknown_not_a_pass():
    """With no business_country_code from Meta, the pages file's country cannot pass the check:
    preflight says it could not confirm it (and still fails a country our own data rules out)."""
    from migrator.preflight.checks import FAIL, PASS, UNKNOWN, check_business_country

    allowed = frozenset({"US", "BR"})
    acct = Read(data={"business_country_code": ""})
    assert check_business_country("1", acct, "US", allowed).status == UNKNOWN
    assert check_business_country("1", acct, "DE", allowed).status == FAIL
    meta = Read(data={"business_country_code": "US"})
    assert check_business_country("1", meta, "US", allowed).status == PASS
