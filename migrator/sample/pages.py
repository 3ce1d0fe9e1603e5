"""The sample's Facebook Pages: businesses in MM countries and elsewhere, one of unknown
country, one without an ad account (pages.csv: page_id,name,business_country,ad_account_id,currency).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from migrator.sample.rand import numeric_id

# the 20 countries where a business may use MM
MM_BUSINESS = frozenset("AU BR CL CO HK IN ID IL MY MX NZ PE PH SA SG TW TH AE US VN".split())

# page template: the first twelve cover every case the audit must meet
_PAGE_PLAN = (
    ("US", True), ("BR", True), ("DE", True), ("IN", True), ("", True), ("GB", True),
    ("MX", False), ("JP", True), ("ID", True), ("PH", True), ("CA", True), ("VN", True),
)
_MORE_PAGE_COUNTRIES = ("TH", "SA", "AE", "SG", "MY", "CO", "CL", "PE", "AU", "NZ", "HK", "TW",
                        "IL", "FR", "KR", "US", "BR", "IN", "MX", "ID", "PH", "VN")
CURRENCY = {"US": "USD", "BR": "BRL", "IN": "INR", "ID": "IDR", "MX": "MXN", "PH": "PHP",
            "VN": "VND", "TH": "THB", "SA": "SAR", "AE": "AED", "SG": "SGD", "MY": "MYR",
            "HK": "HKD", "TW": "TWD", "AU": "AUD", "NZ": "NZD", "CL": "CLP", "CO": "COP",
            "PE": "PEN", "IL": "ILS", "DE": "EUR", "FR": "EUR", "GB": "GBP", "JP": "JPY",
            "CA": "CAD", "KR": "KRW", "": "USD"}
_SHOPS = ("Acme Outlet", "Brisa Moda", "Kaufhaus Nord", "Chai Corner", "Global Gadgets",
          "Albion Books", "Mercado Sol", "Sakura Home", "Batik Studio", "Isla Eats",
          "Maple Sports", "Pho Tuoi", "Siam Spa", "Dune Perfumes", "Gulf Kicks")
TOPICS = (("DEALS", "Weekly deals"), ("NEW_ARRIVALS", "New arrivals"), ("PRICE_DROP", "Price drops"),
          ("BACK_IN_STOCK", "Back in stock"), ("EVENTS", "Event reminders"),
          ("TIPS", "Tips and stories"), ("FLASH", "Flash sales"), ("", "Updates and promotions"))


@dataclass(slots=True)
class Page:
    page_id: str
    name: str
    shop: str
    country: str
    ad_account_id: str
    currency: str
    topics: tuple[tuple[str, str], ...]


def make_pages(rng: random.Random, n: int) -> list[Page]:
    """The first twelve follow the plan above; more pages cycle through other countries."""
    plan = list(_PAGE_PLAN[:n])
    k = 0
    while len(plan) < n:
        plan.append((_MORE_PAGE_COUNTRIES[k % len(_MORE_PAGE_COUNTRIES)], True))
        k += 1
    pages = []
    for i, (country, has_ad) in enumerate(plan):
        shop = _SHOPS[i % len(_SHOPS)] + ("" if i < len(_SHOPS) else f" {i // len(_SHOPS) + 1}")
        topics = tuple(rng.sample(TOPICS, rng.randint(2, 4)))
        pages.append(Page(
            page_id=numeric_id(i, 15, rng),
            name=f"{shop} {country}".strip() if country else shop,
            shop=shop, country=country,
            ad_account_id=(("act_" if i % 3 == 1 else "") + numeric_id(i, 16, rng, 1_111_111)
                           if has_ad else ""),
            currency=CURRENCY.get(country, "USD") if has_ad else "",
            topics=topics))
    return pages


def write_pages(path: Path, pages: list[Page]) -> None:
    """pages.csv: page_id,name,business_country,ad_account_id,currency (a contract)."""
    from migrator.outputs import safe_output

    with safe_output(path, force=True, newline="") as f:  # generate_sample checked the folder
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("page_id", "name", "business_country", "ad_account_id", "currency"))
        for p in pages:
            w.writerow((p.page_id, p.name, p.country, p.ad_account_id, p.currency))
