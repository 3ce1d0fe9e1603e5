"""The emulator's business assets: the token's permissions, ad accounts, Pages and businesses.

Answers the read endpoints preflight uses, in Meta's documented shapes, and refuses sends the way
Meta does when a set-up is incomplete, so every preflight check can be tested end to end:

- `GET /me/permissions` (https://developers.facebook.com/docs/graph-api/reference/user/permissions/)
  -> `{"data": [{"permission": "ads_management", "status": "granted"}, ...]}`;
- `GET /me` -> the system user, or the Page itself when the token is a configured Page token
  (https://developers.facebook.com/docs/graph-api/reference/user/, .../reference/page/);
- `GET /act_<ID>?fields=...` (https://developers.facebook.com/docs/marketing-api/reference/ad-account/)
  -> id, account_id, name, account_status, disable_reason, currency, timezone_name,
  timezone_offset_hours_utc, funding_source, funding_source_details{id,display_string,type},
  business{id,name}, business_country_code;
- `GET /<PAGE_ID>?fields=...` (https://developers.facebook.com/docs/graph-api/reference/page/)
  -> id, name, business{id,name}, location{country,country_code}.
These are Graph API nodes, not MM endpoints.

Configuration: a fixture file (TOML or JSON; `migrator emulator serve --assets FILE`) or
`Assets.from_dict`. Anything not configured is healthy: every permission granted, every ad account
ACTIVE in USD/UTC with a payment method, every object in one business in the US, terms accepted.

    [token]
    permissions = ["ads_management", "pages_messaging"]   # granted; others are "declined"
    app_terms_accepted = true
    [businesses."9001"]
    name = "Acme"
    terms_accepted = false            # sends fail 2300013
    [ad_accounts."555"]
    business = "9001"
    currency = "USD"
    timezone_name = "America/Los_Angeles"
    account_status = 1                # 2 DISABLED, 3 UNSETTLED, ...
    funding_source = false            # unpaid: sends fail 2300011
    business_country_code = "DE"      # unsupported region: sends fail 2300030
    terms_accepted = false            # sends fail 2300067
    visible = false                   # not in the token's assets: reads fail (#100/33)
    [pages."111"]
    business = "9002"                 # another business than its ad account: sends fail 2300039
    country = "JP"                    # unsupported region: sends fail 2300031
    terms_accepted = false            # sends fail 2300066
    access_token = "page-111-token"   # `GET /me` with it answers this Page
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from migrator.emulator.state import EmuError
from migrator.errors import InputError

ALL_PERMISSIONS = ("ads_management", "ads_read", "business_management", "pages_messaging",
                   "pages_show_list", "pages_read_engagement", "pages_manage_metadata",
                   "paid_marketing_messages", "marketing_messages_messenger")
DEFAULT_BUSINESS = "900000000000001"
SYSTEM_USER_ID = "610000000000001"

# wording of the error table in Meta's MM API reference
# (https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference)
SETUP_MESSAGES = {
    2300011: "The ad account does not have a valid payment method.",
    2300013: "The business has not accepted the Marketing Messages terms of service.",
    2300019: "The app has not accepted the Marketing Messages terms of service.",
    2300030: "The ad account is not in a supported region.",
    2300031: "The Page is not in a supported region.",
    2300039: "You do not have permission to send marketing messages for this Page.",
    2300066: "The Page has not signed the Marketing Messages terms of service.",
    2300067: "The ad account has not signed the Marketing Messages terms of service.",
}
_NOT_VISIBLE = ("(#100) Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due "
                "to missing permissions, or does not support this operation")
_COUNTRY_NAMES = {"US": "United States", "BR": "Brazil", "IN": "India", "MX": "Mexico", "ID": "Indonesia",
                  "PH": "Philippines", "VN": "Vietnam", "DE": "Germany", "GB": "United Kingdom", "JP": "Japan",
                  "CA": "Canada", "FR": "France", "AU": "Australia", "TH": "Thailand", "SG": "Singapore"}


@dataclass
class Business:
    id: str
    name: str = "Business"
    terms_accepted: bool = True


@dataclass
class AdAccount:
    id: str
    name: str | None = None
    business: str = DEFAULT_BUSINESS
    currency: str = "USD"
    timezone_name: str = "UTC"
    account_status: int = 1
    disable_reason: int = 0
    funding_source: bool = True
    business_country_code: str = "US"
    terms_accepted: bool = True
    visible: bool = True


@dataclass
class Page:
    id: str
    name: str | None = None
    business: str = DEFAULT_BUSINESS
    country: str | None = "US"
    terms_accepted: bool = True
    visible: bool = True
    access_token: str | None = None


@dataclass
class Assets:
    permissions: tuple[str, ...] = ALL_PERMISSIONS
    app_terms_accepted: bool = True
    businesses: dict[str, Business] = field(default_factory=dict)
    ad_accounts: dict[str, AdAccount] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)
    mm_countries: frozenset[str] | None = None   # default: the rules' mm_business_countries
    config: Any = None                           # the EmulatorConfig (bind): its time zones, currencies, Page tokens

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<assets>") -> "Assets":
        unknown = set(d) - {"token", "businesses", "ad_accounts", "pages"}
        if unknown:
            raise InputError(f"unknown assets section(s): {', '.join(sorted(unknown))}", path=source,
                             hint="sections are [token], [businesses.ID], [ad_accounts.ID], [pages.ID]")
        tok = d.get("token") or {}
        for section, kind in (("businesses", Business), ("ad_accounts", AdAccount), ("pages", Page)):
            known = {f.name for f in fields(kind)} - {"id"}
            for oid, entry in (d.get(section) or {}).items():
                bad = set(entry) - known if isinstance(entry, dict) else {"(not a table)"}
                if bad:
                    raise InputError(f"[{section}.\"{oid}\"]: unknown key(s) {', '.join(sorted(bad))}", path=source,
                                     hint=f"keys are {', '.join(sorted(known))}")
        try:
            a = cls(permissions=tuple(tok.get("permissions", ALL_PERMISSIONS)),
                    app_terms_accepted=bool(tok.get("app_terms_accepted", True)))
            for bid, b in (d.get("businesses") or {}).items():
                a.businesses[str(bid)] = Business(str(bid), **b)
            for aid, b in (d.get("ad_accounts") or {}).items():
                aid = str(aid).removeprefix("act_")
                a.ad_accounts[aid] = AdAccount(aid, **{k: (str(v) if k == "business" else v) for k, v in b.items()})
            for pid, b in (d.get("pages") or {}).items():
                a.pages[str(pid)] = Page(str(pid), **{k: (str(v) if k == "business" else v) for k, v in b.items()})
        except TypeError as exc:
            raise InputError(f"bad assets entry: {exc}", path=source) from None
        for acct in a.ad_accounts.values():
            try:
                ZoneInfo(acct.timezone_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputError(f"ad account {acct.id}: unknown timezone_name {acct.timezone_name!r}",
                                 path=source) from None
        return a

    @classmethod
    def load(cls, path: str | Path) -> "Assets":
        p = Path(path)
        try:
            raw = p.read_bytes()
            data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read assets fixture: {exc.strerror}", path=str(p)) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"assets fixture is not valid: {exc}", path=str(p)) from None
        return cls.from_dict(data, source=str(p))

    def bind(self, config) -> "Assets":
        """One truth with the emulator's other settings: an ad account's time zone here is the day its
        daily budget resets on (EmulatorConfig.account_timezones), and --account-timezone,
        account_currencies and the Page token map (page_tokens) shape what these reads answer."""
        self.config = config
        for aid, a in self.ad_accounts.items():
            # one zone per account: the read answers the zone the budget day is counted in (an
            # --account-timezone given beside default assets from the workspace, which say UTC, wins)
            a.timezone_name = config.account_timezones.setdefault(aid, a.timezone_name)
        return self

    # ------------------------------------------------------------------ lookups (healthy defaults)
    def account(self, aid: str) -> AdAccount:
        a = self.ad_accounts.get(aid)
        if a is not None:
            return a
        cfg = self.config
        if cfg is None:
            return AdAccount(aid)
        return AdAccount(aid, currency=cfg.account_currencies.get(aid, "USD"),
                         timezone_name=cfg.account_timezones.get(aid, cfg.default_account_timezone))

    def page(self, pid: str) -> Page:
        return self.pages.get(pid) or Page(pid)

    def business(self, bid: str) -> Business:
        return self.businesses.get(bid) or Business(bid)

    def allowed(self) -> frozenset[str]:
        if self.mm_countries is None:
            from migrator.rules import load_rules

            self.mm_countries = load_rules().mm_business_set()
        return self.mm_countries

    # ------------------------------------------------------------------ reads
    def answer(self, method: str, parts: list[str], params: dict, token: str, state) -> dict | None:
        """The body for a read this module serves, or None (the request is someone else's).

        A Page is known when configured or when the emulator holds subscribers of it; any
        `act_<digits>` is an ad account (campaigns may be created under any of them).
        """
        if method != "GET" or not parts:
            return None
        if parts == ["me", "permissions"]:
            return {"data": [{"permission": p, "status": "granted" if p in self.permissions else "declined"}
                             for p in ALL_PERMISSIONS]}
        if parts == ["me"]:
            page = next((p for p in self.pages.values() if p.access_token and p.access_token == token), None)
            owned = getattr(self.config, "page_tokens", None) or {}
            if page is None and token in owned.values():
                page = self.page(next(pid for pid, t in owned.items() if t == token))
            body = ({"id": page.id, "name": page.name or f"Page {page.id}"} if page
                    else {"id": SYSTEM_USER_ID, "name": "Partner system user"})
            return _fields(body, params.get("fields"))
        if len(parts) != 1:
            return None
        obj = parts[0]
        if obj.startswith("act_"):
            aid = obj[4:]
            if not aid.isdigit():
                return None
            a = self.account(aid)
            if not a.visible:
                raise EmuError(100, _NOT_VISIBLE.format(id=obj), subcode=33)
            return _fields(self._account_body(a), params.get("fields"))
        if (obj in self.pages or obj in state.listing) and obj not in state.campaigns:
            p = self.page(obj)
            if not p.visible:
                raise EmuError(100, _NOT_VISIBLE.format(id=obj), subcode=33)
            return _fields(self._page_body(p), params.get("fields"))
        return None

    def _account_body(self, a: AdAccount) -> dict:
        b = self.business(a.business)
        zone = ZoneInfo(a.timezone_name)
        offset = zone.utcoffset(dt.datetime.now()) or dt.timedelta(0)
        body = {"id": f"act_{a.id}", "account_id": a.id, "name": a.name or f"Ad account {a.id}",
                "account_status": a.account_status, "disable_reason": a.disable_reason,
                "currency": a.currency, "timezone_name": a.timezone_name,
                "timezone_offset_hours_utc": offset.total_seconds() / 3600,
                "business": {"id": b.id, "name": b.name},
                "business_country_code": a.business_country_code}
        if a.funding_source:
            body["funding_source"] = f"7{a.id[-12:]:0>12}"
            body["funding_source_details"] = {"id": body["funding_source"], "display_string": "Visa *1234",
                                              "type": 1}
        return body

    def _page_body(self, p: Page) -> dict:
        b = self.business(p.business)
        body: dict[str, Any] = {"id": p.id, "name": p.name or f"Page {p.id}", "business": {"id": b.id, "name": b.name}}
        if p.country:
            body["location"] = {"country": _COUNTRY_NAMES.get(p.country, p.country), "country_code": p.country}
        return body

    # ------------------------------------------------------------------ sends
    def _permissions_ok(self) -> bool:
        cached = getattr(self, "_perm_cache", None)
        if cached is None or cached[0] is not self.permissions:
            granted = set(self.permissions)
            ok = {"ads_management", "pages_messaging"} <= granted and bool(
                {"paid_marketing_messages", "marketing_messages_messenger"} & granted)
            self._perm_cache = cached = (self.permissions, ok)
        return cached[1]

    def check_send(self, ad_account_id: str, page_id: str | None) -> None:
        """Refuse a send whose set-up is incomplete, in the order a request would meet the checks."""
        if not (self.ad_accounts or self.pages or self.businesses) and self.app_terms_accepted \
                and self._permissions_ok():
            return              # nothing configured: every default object is set up (the hot path)
        a = self.account(ad_account_id)
        p = self.page(page_id) if page_id else None
        if not self.app_terms_accepted:
            raise EmuError(2300019, SETUP_MESSAGES[2300019])
        if not self.business(a.business).terms_accepted:
            raise EmuError(2300013, SETUP_MESSAGES[2300013])
        if not a.terms_accepted:
            raise EmuError(2300067, SETUP_MESSAGES[2300067])
        if p is not None and not p.terms_accepted:
            raise EmuError(2300066, SETUP_MESSAGES[2300066])
        if not a.funding_source:
            raise EmuError(2300011, SETUP_MESSAGES[2300011])
        if a.business_country_code not in self.allowed():
            raise EmuError(2300030, SETUP_MESSAGES[2300030])
        if p is not None and p.country and p.country not in self.allowed():
            raise EmuError(2300031, SETUP_MESSAGES[2300031])
        missing = not ({"pages_messaging"} <= set(self.permissions)
                       and {"paid_marketing_messages", "marketing_messages_messenger"} & set(self.permissions))
        if missing or (p is not None and (not p.visible or p.business != a.business)):
            raise EmuError(2300039, SETUP_MESSAGES[2300039])
        if "ads_management" not in self.permissions:
            raise EmuError(200, "(#200) Requires ads_management permission to manage the object",
                           type="OAuthException", status=403)


def assets_from_workspace(ws, plan=None) -> Assets:
    """Healthy assets for the workspace's pages as `pages.csv` describes them (the demo's fixture):
    each page's business in its declared country, its ad account in its currency. Pages that share an
    ad account (in the pages file or in the plan) are in that account's one business, as Meta requires
    of a page and the ad account that pays for its messages; an ad account the plan maps a page to (and
    the pages file does not name) joins that page's business. Time zones are UTC (the day the planner
    counts budgets in)."""
    a = Assets()
    rows = list(ws.conn.execute("SELECT page_id, name, business_country, ad_account_id, currency FROM pages"))
    for pid, name, country, acct, currency in rows:
        aid = str(acct).removeprefix("act_") if acct else None
        if aid and aid in a.ad_accounts:        # a shared account: its pages live in its business
            bid = a.ad_accounts[aid].business
        else:
            bid = f"9{str(pid)[-14:]:0>14}"
            a.businesses[bid] = Business(bid, name=f"{name or pid} business")
        a.pages[str(pid)] = Page(str(pid), name=name, business=bid, country=(country or None))
        if aid and aid not in a.ad_accounts:
            a.ad_accounts[aid] = AdAccount(aid, name=f"{name or pid} ads", business=bid,
                                           currency=(currency or "USD").upper(),
                                           business_country_code=(country or "US").upper())
    for c in (plan.campaigns if plan is not None else []):
        page = a.pages.setdefault(str(c.page_id), a.page(str(c.page_id)))
        if c.ad_account_id not in a.ad_accounts:
            country = page.country or "US"
            a.ad_accounts[c.ad_account_id] = AdAccount(c.ad_account_id, business=page.business,
                                                       currency=c.currency, business_country_code=country)
        page.business = a.ad_accounts[c.ad_account_id].business   # everything set up: page and its payer together
    return a


def assets_for_rehearsal(ws) -> Assets:
    """`emulator serve`'s default assets: the workspace's pages and ad accounts as the partner's files
    and latest plan describe them (assets_from_workspace), everything else set up.

    Without this a rehearsal's Meta would bill every ad account in USD for a US business, and
    `preflight` against it would refuse every page the pages file places elsewhere: a false alarm
    the README's own rehearsal walked into.
    """
    from migrator.plan import latest
    from migrator.plan.model import SavedPlan

    stored = latest(ws)
    plan = None
    if stored is not None:
        try:
            plan = SavedPlan.model_validate(stored.body)
        except ValueError:
            plan = None          # a plan of an older format: its campaigns' accounts are not added
    return assets_from_workspace(ws, plan)


def _fields(body: dict, fields: Any) -> dict:
    """Graph returns the requested top-level fields (and `id`); `a{b,c}` selects field a."""
    if not fields:
        return {k: body[k] for k in ("id", "name") if k in body}
    wanted, depth, cur = [], 0, ""
    for ch in str(fields):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            wanted.append(cur.strip())
            cur = ""
            continue
        if depth == 0 and ch not in "{}":
            cur += ch
    wanted.append(cur.strip())
    out = {"id": body["id"]} if "id" in body else {}
    for f in wanted:
        if f in body:
            out[f] = body[f]
    return out


__all__ = ["AdAccount", "Assets", "Business", "Page", "assets_for_rehearsal", "assets_from_workspace"]
