"""The preflight checks: pure functions from what the Graph reads returned to pass / fail / unknown.

No I/O here: `read.py` makes the calls and hands each check the object it read (or why it could
not), so every rule is testable alone. A check that cannot be read at all before a send (terms of
service, campaign warm-up) is `unknown` with `readable=False`: it is said, with guidance, but does
not make a page's state unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from migrator.preflight.guidance import (ACCOUNT_STATUS, ACCOUNT_STATUS_WHO, GUIDES, MM_PERMISSIONS,
                                         REQUIRED_PERMISSIONS)
from migrator.timeparse import DAY

PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


@dataclass(frozen=True)
class Read:
    """One Graph read: the object, or why not. `denied`: Graph answered that the token may not see it
    (or it does not exist); otherwise a failed read is a network/throttling problem (unknown)."""

    data: dict | None = None
    error: str | None = None
    denied: bool = False
    unreachable: bool = False   # no connection at all: every other read would fail the same way

    @property
    def ok(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class CheckResult:
    check: str
    scope: str                  # token | ad_account | page
    subject: str                # the object id ("me" for the token)
    status: str                 # pass | fail | unknown
    detail: str
    readable: bool = True       # False: Meta exposes nothing to read before a send
    who: str | None = None      # overrides the guide's (e.g. a disabled account: Meta)
    unread: bool = False        # readable, but the read failed (network, throttling): try again

    def to_json(self) -> dict:
        g = GUIDES[self.check]
        out = {"check": self.check, "title": g.title, "scope": self.scope, "subject": self.subject,
               "status": self.status, "detail": self.detail, "readable": self.readable, "means": g.means,
               "source": g.source}
        if self.unread:
            out["action"] = ("Graph did not answer this read (network, base URL or throttling): run preflight "
                             "again; if the object itself is refused, this check then says why.")
            out["who"] = "partner"
        elif self.status != PASS:
            out["action"] = g.action
            out["who"] = self.who or g.who
        return out


def _r(check, scope, subject, status, detail, **kw) -> CheckResult:
    return CheckResult(check, scope, subject, status, detail, **kw)


def _unread(check: str, scope: str, subject: str, read: Read, what: str) -> CheckResult:
    return _r(check, scope, subject, UNKNOWN, f"{what} could not be read: {read.error or 'no answer'}",
              unread=not read.denied)


# ---------------------------------------------------------------------- the token
def check_permissions(read: Read) -> CheckResult:
    """`GET /me/permissions` -> every required permission granted, and one of the two MM ones."""
    if not read.ok:
        return _unread("token_permissions", "token", "me", read, "the token's permissions")
    granted = {str(p.get("permission")) for p in read.data.get("data") or []
               if isinstance(p, dict) and p.get("status") == "granted"}
    declined = {str(p.get("permission")) for p in read.data.get("data") or []
                if isinstance(p, dict) and p.get("status") in ("declined", "expired")}
    missing = [p for p in REQUIRED_PERMISSIONS if p not in granted]
    if not any(p in granted for p in MM_PERMISSIONS):
        missing.append(" or ".join(MM_PERMISSIONS))
    if missing:
        extra = f" (declined: {', '.join(sorted(declined))})" if declined else ""
        return _r("token_permissions", "token", "me", FAIL, "missing: " + ", ".join(missing) + extra)
    have = [p for p in REQUIRED_PERMISSIONS + MM_PERMISSIONS if p in granted]
    return _r("token_permissions", "token", "me", PASS, "granted: " + ", ".join(have))


# ---------------------------------------------------------------------- ad accounts
def check_access(check: str, scope: str, subject: str, read: Read, what: str) -> CheckResult:
    if read.ok:
        name = read.data.get("name")
        return _r(check, scope, subject, PASS, f"readable{f' ({name})' if name else ''}")
    if read.denied:
        return _r(check, scope, subject, FAIL, f"the token cannot see this {what}: {read.error}")
    return _unread(check, scope, subject, read, f"the {what}")


def check_account_status(act: str, acct: Read) -> CheckResult:
    if not acct.ok:
        return _unread("ad_account_status", "ad_account", act, acct, "the ad account")
    status = acct.data.get("account_status")
    try:
        code = int(status)
    except (TypeError, ValueError):
        return _r("ad_account_status", "ad_account", act, UNKNOWN, "the account gave no account_status")
    name = ACCOUNT_STATUS.get(code, f"status {code}")
    if code == 1:
        return _r("ad_account_status", "ad_account", act, PASS, "ACTIVE")
    reason = acct.data.get("disable_reason")
    extra = f" (disable_reason {reason})" if reason not in (None, 0, "0") else ""
    return _r("ad_account_status", "ad_account", act, FAIL, f"{name}{extra}: not active",
              who=ACCOUNT_STATUS_WHO.get(code))


def check_currency(act: str, acct: Read, plan_currencies: Iterable[str]) -> CheckResult:
    if not acct.ok:
        return _unread("ad_account_currency", "ad_account", act, acct, "the ad account")
    have = str(acct.data.get("currency") or "").upper()
    want = sorted({c.upper() for c in plan_currencies if c})
    if not have:
        return _r("ad_account_currency", "ad_account", act, UNKNOWN, "the account gave no currency")
    wrong = [c for c in want if c != have]
    if wrong:
        return _r("ad_account_currency", "ad_account", act, FAIL,
                  f"the plan's budgets are in {', '.join(want)}, the ad account bills in {have}")
    return _r("ad_account_currency", "ad_account", act, PASS, f"{have}, as planned")


def check_funding(act: str, acct: Read) -> CheckResult:
    if not acct.ok:
        return _unread("funding_source", "ad_account", act, acct, "the ad account")
    details = acct.data.get("funding_source_details")
    source = acct.data.get("funding_source")
    if isinstance(details, dict) and (details.get("id") or details.get("display_string")):
        shown = details.get("display_string") or f"type {details.get('type')}"
        return _r("funding_source", "ad_account", act, PASS, f"payment method: {shown}")
    if source not in (None, "", "0", 0):
        return _r("funding_source", "ad_account", act, PASS, "a funding source is set")
    return _r("funding_source", "ad_account", act, FAIL, "no payment method on the ad account")


def check_business_country(act: str, acct: Read, declared: str | None, allowed: frozenset[str]) -> CheckResult:
    """Meta's `business_country_code` decides; the partner's declared country is compared with it."""
    if not acct.ok:
        said = f" (the pages file / plan spec says {declared})" if declared else ""
        return _unread("business_country", "ad_account", act, acct, "the ad account's business country" + said)
    meta = str(acct.data.get("business_country_code") or "").upper()
    declared = (declared or "").upper() or None
    country = meta or declared
    source = "Meta's business_country_code" if meta else "the pages file / plan spec (Meta gave none)"
    if not country:
        return _r("business_country", "ad_account", act, UNKNOWN,
                  "neither Meta nor the pages file gives the business's country")
    note = ""
    if meta and declared and meta != declared:
        note = f"; the pages file / plan spec says {declared}: correct it and re-ingest"
    if country not in allowed:
        return _r("business_country", "ad_account", act, FAIL,
                  f"{country} ({source}) is not an MM business country{note}")
    if note:
        return _r("business_country", "ad_account", act, FAIL, f"{country} ({source}){note}",
                  who="partner")
    if not meta:   # only our own data says so: a pass would claim what Meta has not confirmed
        return _r("business_country", "ad_account", act, UNKNOWN,
                  f"{country} by the pages file / plan spec; Meta gave no business_country_code to confirm it")
    return _r("business_country", "ad_account", act, PASS, f"{country} ({source})")


def local_day_loads(buckets: Iterable[tuple[int, int]], tz_name: str) -> dict[str, int]:
    """Sends per day of `tz_name` from (epoch seconds, sends) buckets -> {YYYY-MM-DD: sends}."""
    zone = ZoneInfo(tz_name)
    out: dict[str, int] = {}
    for t, n in buckets:
        d = datetime.fromtimestamp(t, timezone.utc).astimezone(zone).date().isoformat()
        out[d] = out.get(d, 0) + n
    return out


def check_budget_day(act: str, acct: Read, daily: list[tuple[str, int, int, list[tuple[int, int]]]] | None
                     ) -> CheckResult:
    """The plan counts daily budgets per UTC day; does every day of the account's zone fit too?

    `daily`: per campaign of this account with a daily budget: (key, daily budget, cost per message,
    [(epoch s, planned sends)]); None before a plan exists (a spec). No daily budget: nothing to compare.
    """
    if not acct.ok:
        return _unread("ad_account_budget_day", "ad_account", act, acct, "the ad account")
    tz = acct.data.get("timezone_name")
    if not tz:
        return _r("ad_account_budget_day", "ad_account", act, UNKNOWN, "the account gave no timezone_name")
    if daily is None:
        return _r("ad_account_budget_day", "ad_account", act, PASS,
                  f"day in {tz}; the planned sends are compared with it once a plan exists")
    if not daily:
        return _r("ad_account_budget_day", "ad_account", act, PASS,
                  f"day in {tz}; no daily budget in the plan for this account")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return _r("ad_account_budget_day", "ad_account", act, UNKNOWN, f"unknown time zone {tz!r}")
    over = []
    for key, budget, cost, buckets in daily:
        if not cost:
            continue
        cap = budget // cost
        loads = local_day_loads(buckets, str(tz))
        worst = max(loads.items(), key=lambda kv: kv[1], default=None)
        if worst and worst[1] > cap:
            over.append(f"campaign {key}: {worst[1]:,} sends planned on {worst[0]} ({tz}) but its daily budget "
                        f"pays for {cap:,}")
    if over:
        return _r("ad_account_budget_day", "ad_account", act, FAIL,
                  "the account's day runs in " + str(tz) + ", the plan counted UTC days: " + "; ".join(over))
    return _r("ad_account_budget_day", "ad_account", act, PASS,
              f"day in {tz} (the plan counted UTC days); the planned sends fit each of the account's days")


# ---------------------------------------------------------------------- pages
def check_same_business(page_id: str, page: Read, act: str, acct: Read) -> CheckResult:
    if not page.ok or not acct.ok:
        bad = page if not page.ok else acct
        return _unread("same_business", "page", page_id, bad, "the page or its ad account")
    pb = (page.data.get("business") or {}).get("id") if isinstance(page.data.get("business"), dict) else None
    ab = (acct.data.get("business") or {}).get("id") if isinstance(acct.data.get("business"), dict) else None
    if not pb or not ab:
        which = " and ".join(w for w, v in (("the page", pb), ("the ad account", ab)) if not v)
        return _r("same_business", "page", page_id, UNKNOWN, f"{which} shows no business")
    if str(pb) != str(ab):
        return _r("same_business", "page", page_id, FAIL,
                  f"the page belongs to business {pb}, ad account act_{act} to business {ab}")
    return _r("same_business", "page", page_id, PASS, f"both in business {pb}")


def check_page_country(page_id: str, page: Read, allowed: frozenset[str]) -> CheckResult:
    if not page.ok:
        return _unread("page_country", "page", page_id, page, "the page")
    loc = page.data.get("location")
    loc = loc if isinstance(loc, dict) else {}
    code = _country_code(loc.get("country_code")) or _country_code(loc.get("country"))
    if not code:
        shown = loc.get("country") or loc.get("country_code")
        return _r("page_country", "page", page_id, UNKNOWN,
                  (f"the page's location country {shown!r} is not a known country; " if shown else
                   "the page shows no location country; ")
                  + "Meta does not say how it decides a Page's region (a 2300031 refusal at send time "
                  "is the only sign)", readable=False)
    if code not in allowed:
        return _r("page_country", "page", page_id, FAIL, f"the page is in {code}: not an MM business country")
    return _r("page_country", "page", page_id, PASS, code)


def _country_code(value) -> str | None:
    """ISO alpha-2 from a code or an English country name (Meta's Location.country is a name)."""
    from migrator.countries import iso_countries, normalize_country

    if not value:
        return None
    try:
        return normalize_country(str(value))
    except ValueError:
        pass
    wanted = str(value).strip().casefold()
    return next((c for c, name in iso_countries().items() if name.casefold() == wanted), None)


def check_page_token(page_id: str, me: Read | None, *, map_given: bool) -> CheckResult:
    """`GET /me` with the page's token answers the Page itself when the token is that Page's.
    `me` is None when the map has no line for the page (or no map was given)."""
    if not map_given:
        return _r("page_token", "page", page_id, UNKNOWN,
                  "not checked: no page -> token map given (--page-tokens FILE); `pull tokens` needs a Page "
                  "token per page", readable=False)
    if me is None:
        return _r("page_token", "page", page_id, FAIL, "the page token map has no line for this page")
    if not me.ok:
        if me.denied:
            return _r("page_token", "page", page_id, FAIL, f"the page's token is refused: {me.error}")
        return _unread("page_token", "page", page_id, me, "the token's owner")
    got = str(me.data.get("id") or "")
    if got != str(page_id):
        return _r("page_token", "page", page_id, FAIL,
                  f"the token given for this page belongs to {got or 'no object'}, not to the page")
    return _r("page_token", "page", page_id, PASS, "a valid token of this Page")


def terms_of_service(page_id: str) -> CheckResult:
    return _r("terms_of_service", "page", page_id, UNKNOWN,
              "cannot be read without sending: Meta shows unsigned terms only as a refused send "
              "(2300013 / 2300066 / 2300067 / 2300069, app: 2300019)", readable=False)


def campaign_population() -> CheckResult:
    return _r("campaign_population", "token", "me", UNKNOWN,
              "cannot be read before the campaigns exist: each needs ~60 min to populate", readable=False)


def page_state(results: Iterable[CheckResult]) -> str:
    """fail if any check of the page (or its ad account / the token) fails; unknown if one that can be
    read could not be; else pass (what cannot be read before a send is said, not counted)."""
    rs = list(results)
    if any(r.status == FAIL for r in rs):
        return FAIL
    if any(r.status == UNKNOWN and r.readable for r in rs):
        return UNKNOWN
    return PASS
