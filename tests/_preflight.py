"""Helpers for the preflight tests: a two-page estate and the emulator with configurable assets."""

from __future__ import annotations

import os

from migrator.emulator import EmulatorConfig, SyncEmulatorTransport, VirtualClock, create_app
from migrator.emulator.assets import AdAccount, Assets, Business, Page
from migrator.graph import NO_RETRY
from migrator.plan import write_plan
from migrator.preflight import preflight
from _plan import estate, lib, plan, tok

PAGE_US, PAGE_BR = "101000000000001", "202000000000002"
ACT_US, ACT_BR = "111", "222"
BIZ_US, BIZ_BR = "9001", "9002"
SYS_TOKEN = "sys-user-token-SECRET-abc123"
PAGE_TOKENS = {PAGE_US: "page-us-token-SECRET-1", PAGE_BR: "page-br-token-SECRET-2"}

SPEC = """
[[ad_accounts]]
id = "222"
currency = "BRL"
business_country = "BR"
cost_per_message = 6
"""


def two_pages(ws, tmp, *, n=6, extra="", tokens=None):
    """Pages PAGE_US (act 111, USD) and PAGE_BR (act 222, BRL), n US recipients each, the saved plan."""
    tokens = tokens or [tok(i, page=PAGE_US) for i in range(n)] + [tok(100 + i, page=PAGE_BR) for i in range(n)]
    estate(ws, tmp / "in", tokens,
           pages=[[PAGE_US, "Shop US", "US", ACT_US, "USD"], [PAGE_BR, "Loja BR", "BR", ACT_BR, "BRL"]],
           content=[lib(PAGE_US, "d1", "Deals", {"text": "Deals!"}), lib(PAGE_BR, "d2", "Deals", {"text": "Ofertas!"})])
    p = plan(ws, tmp / "spec", SPEC + extra)
    path = tmp / "plan.json"
    write_plan(p, path)
    return p, path


def healthy() -> Assets:
    """Everything set up: each page and its ad account in one business, tokens of each page known."""
    return Assets(
        businesses={BIZ_US: Business(BIZ_US, "Shop US Inc"), BIZ_BR: Business(BIZ_BR, "Loja BR Ltda")},
        ad_accounts={ACT_US: AdAccount(ACT_US, business=BIZ_US, currency="USD", business_country_code="US"),
                     ACT_BR: AdAccount(ACT_BR, business=BIZ_BR, currency="BRL", business_country_code="BR",
                                       timezone_name="UTC")},
        pages={PAGE_US: Page(PAGE_US, "Shop US", business=BIZ_US, country="US",
                             access_token=PAGE_TOKENS[PAGE_US]),
               PAGE_BR: Page(PAGE_BR, "Loja BR", business=BIZ_BR, country="BR",
                             access_token=PAGE_TOKENS[PAGE_BR])})


def emulator(assets: Assets, clock=None):
    cfg = EmulatorConfig(warmup_seconds=0)
    cfg.clock = clock or VirtualClock()
    return create_app(cfg, assets=assets)


def token_map(tmp, mapping, mode=0o600):
    p = tmp / "pages.tokens"
    p.write_text("".join(f"{k}\t{v}\n" for k, v in mapping.items()))
    os.chmod(p, mode)
    return p


def check(ws, path, assets, *, tokens=None, tmp=None, save=True):
    """Run preflight against an in-process emulator holding `assets`."""
    app = emulator(assets)
    transport = SyncEmulatorTransport(app)
    try:
        return preflight(ws, path, access_token=SYS_TOKEN, base_url="http://emulator.test", transport=transport,
                         page_tokens_path=token_map(tmp, tokens) if tokens is not None else None,
                         retry=NO_RETRY, save=save)
    finally:
        transport.close()


def status(report, name, subject=None):
    found = [r for r in report.checks if r.check == name and (subject is None or r.subject == subject)]
    assert found, f"no check {name} {subject}"
    return found[0]
