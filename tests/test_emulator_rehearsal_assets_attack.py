"""`emulator serve`'s default assets (assets_for_rehearsal) on estates real partners have."""

from __future__ import annotations

from migrator.emulator.assets import assets_for_rehearsal
from _exec import Emu, ledger, planned
from _plan import lib, tok


def test_pages_sharing_one_ad_account_can_all_send(ws, tmp_path):
    # one ad account paying for several Pages of one business: the common set-up
    pages = [["P1", "Shop 1", "US", "111", "USD"], ["P2", "Shop 2", "US", "111", "USD"],
             ["P3", "Shop 3", "US", "111", "USD"]]
    tokens = [tok(i, page=f"P{i % 3 + 1}") for i in range(9)]
    content = [lib(f"P{i}", f"deals{i}", "Deals", {"text": f"Deals {i}!"}) for i in (1, 2, 3)]
    p = planned(ws, tmp_path, tokens=tokens, pages=pages, content=content)
    emu = Emu(ws, assets=assets_for_rehearsal(ws))
    s = emu.run(ws, p)
    assert s.page_stops == [], s.page_stops
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 9}


def test_a_page_the_spec_maps_to_another_pages_ad_account_can_send(ws, tmp_path):
    pages = [["P1", "Shop 1", "US", "111", "USD"], ["P2", "Shop 2", "US", "", "USD"]]
    tokens = [tok(i, page=f"P{i % 2 + 1}") for i in range(6)]
    content = [lib(f"P{i}", f"deals{i}", "Deals", {"text": f"Deals {i}!"}) for i in (1, 2)]
    p = planned(ws, tmp_path, tokens=tokens, pages=pages, content=content,
                extra='[pages.P2]\nad_account = "111"\n')
    assert {c.ad_account_id for c in p.campaigns} == {"111"} and len(p.campaigns) == 2
    emu = Emu(ws, assets=assets_for_rehearsal(ws))
    s = emu.run(ws, p)
    assert s.page_stops == [], s.page_stops
    assert s.outcome == "done" and ledger(ws, p.plan_id) == {"sent": 6}


def test_account_timezone_given_to_the_emulator_is_what_it_answers_with_workspace_assets(ws, tmp_path):
    # `emulator serve --account-timezone 111=America/Los_Angeles` (its budget day) with the default
    # assets from the workspace: the ad account must read as LA, or the executor waits for UTC midnight
    p = planned(ws, tmp_path, 3)
    emu = Emu(ws, assets=assets_for_rehearsal(ws), account_timezones={"111": "America/Los_Angeles"})
    emu.run(ws, p)
    zones = {r[0] for r in ws.conn.execute("SELECT timezone_name FROM exec_campaign_zones WHERE plan_id = ?",
                                           (p.plan_id,))}
    assert zones == {"America/Los_Angeles"}
