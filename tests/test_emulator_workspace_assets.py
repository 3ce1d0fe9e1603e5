"""The emulator's assets built from the partner's own files (the demo, and `emulator serve` by default)."""

from __future__ import annotations

from migrator.emulator.assets import assets_for_rehearsal, assets_from_workspace
from _plan import ingest


def _pages(ws, tmp_path, rows):
    ingest(ws, tmp_path, pages=rows)


def test_pages_that_share_an_ad_account_are_in_its_business_and_can_all_send(ws, tmp_path):
    # one partner business paying for three pages through one ad account (benchmarks/plan.py's estate)
    _pages(ws, tmp_path, [["101", "A", "US", "777", "USD"], ["102", "B", "US", "777", "USD"],
                          ["103", "C", "BR", "888", "BRL"]])
    a = assets_from_workspace(ws)
    for page in ("101", "102"):
        a.check_send("777", page)                 # raised 2300039 for all pages but the last before
    assert a.page("101").business == a.page("102").business == a.account("777").business
    assert a.page("103").business == a.account("888").business != a.account("777").business
    assert a.account("888").currency == "BRL" and a.account("888").business_country_code == "BR"


def test_a_plan_ad_account_for_several_pages_brings_them_into_its_business(ws, tmp_path):
    from types import SimpleNamespace as NS

    _pages(ws, tmp_path, [["101", "A", "US", "", ""], ["102", "B", "US", "", ""]])
    plan = NS(campaigns=[NS(ad_account_id="555", page_id="101", currency="USD"),
                         NS(ad_account_id="555", page_id="102", currency="USD"),
                         NS(ad_account_id="555", page_id="999", currency="USD")])   # not in the pages file
    a = assets_from_workspace(ws, plan)
    for page in ("101", "102", "999"):
        a.check_send("555", page)


def test_rehearsal_assets_without_a_plan_are_the_pages_files(ws, tmp_path):
    _pages(ws, tmp_path, [["101", "A", "BR", "888", "BRL"]])
    a = assets_for_rehearsal(ws)
    assert a.account("888").currency == "BRL"
    a.check_send("888", "101")
