"""The emulator's own acceptance checks, written from Meta's documented limits and error texts.

Why not the converter's validator: an emulator that accepts exactly what our converter emits
can never catch a converter mistake. These checks are written separately from
Meta's MM template pages and error table
(https://developers.facebook.com/documentation/business-messaging/messenger-platform/marketing-messages-on-messenger/api-reference):
they read only the raw request, know nothing of the
converter's problem codes, and answer with Meta's code and text (`texts.MESSAGES`). The
numbers (640, 3, 80, button types, line breaks, budgets, 30 days) come from the rules in force
(`EmulatorRules.from_rules`), the same data a partner overrides with `--rules`.

Order follows the request: shape (2300010), then the first broken field in document order,
as Meta reports one error per call. Limits Meta documents without a code (title 80, 13 quick
replies, 20-character titles) answer Graph's generic (#100) invalid-parameter error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from migrator.emulator.texts import MESSAGES

TEMPLATES = ("generic", "button", "media", "product", "receipt", "coupon")
MACROS = ("first_name", "last_name", "full_name")
_MACRO = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_FB_HOSTS = ("facebook.com", "fb.com", "fb.watch")


@dataclass(frozen=True)
class EmulatorRules:
    """What the emulator enforces, read from the rules in force (Meta's documented numbers as data).

    The one place the emulator reads the rules: its checks, budgets, cadence and excluded
    regions all come from here (`EmulatorConfig.rules_view()`). No number is written here as a
    default: `packaged()` reads the packaged rules file, `from_rules` a partner's override.
    """

    text_max: int
    buttons_max: int
    buttons_per_message_max: int
    button_types: tuple[str, ...]
    button_title_max: int
    title_max: int
    subtitle_max: int
    cards_max: int
    images_max: int
    quick_replies_max: int
    payload_max: int
    line_breaks_max: int
    cadence_hours: int
    min_daily_budget: tuple[tuple[str, int], ...]
    lifetime_min_days: int
    start_max_days_ahead: int
    overspend_percent: int
    weekly_multiple: int
    excluded_regions: frozenset[str]     # where MM does not deliver (EU by eu_definition, JP, KR, ...)

    @classmethod
    def from_rules(cls, r) -> "EmulatorRules":
        return cls(
            text_max=r.mm_text_max_chars.value, buttons_max=r.mm_buttons_max.value,
            buttons_per_message_max=r.mm_buttons_per_message_max.value,
            button_types=tuple(r.mm_button_types.value),
            button_title_max=r.mm_button_title_max_chars.value, title_max=r.mm_card_title_max_chars.value,
            subtitle_max=r.mm_card_subtitle_max_chars.value, cards_max=r.mm_cards_max.value,
            images_max=r.mm_images_max.value, quick_replies_max=r.mm_quick_replies_max.value,
            payload_max=r.mm_payload_max_chars.value, line_breaks_max=r.mm_line_breaks_max.value,
            cadence_hours=r.mm_cadence_hours.value,
            min_daily_budget=tuple(sorted(r.mm_min_daily_budget.value.items())),
            lifetime_min_days=r.mm_lifetime_budget_min_days.value,
            start_max_days_ahead=r.mm_start_max_days_ahead.value,
            overspend_percent=r.mm_daily_budget_overspend_percent.value,
            weekly_multiple=r.mm_daily_budget_weekly_multiple.value,
            excluded_regions=r.mm_excluded_recipients())

    @classmethod
    def packaged(cls) -> "EmulatorRules":
        """From the rules file that ships with migrator."""
        from migrator.rules import load_rules

        return cls.from_rules(load_rules())

    def min_daily(self, currency: str) -> int | None:
        return dict(self.min_daily_budget).get(currency.upper())


class Refusal(Exception):
    """One refusal: (code, message, user_msg); the app wraps it in Graph's envelope."""

    def __init__(self, code: int, detail: str | None = None):
        base = MESSAGES.get(code) if code != 100 else None
        msg = base if base else f"(#100) {detail}"
        super().__init__(msg)
        self.code, self.message, self.detail = code, msg, detail


def _len(s: str) -> int:
    return max(len(s), len(s.encode("utf-16-le", "surrogatepass")) // 2)


def _breaks(s: str) -> int:
    t = s.replace("\r\n", "\n")
    return t.count("\n") + t.count("\r") + t.count("\u2028") + t.count("\u2029")


def _url_ok(u: Any) -> bool:
    if not isinstance(u, str) or not u or any(c.isspace() for c in u):
        return False
    try:
        p = urlsplit(u)
    except ValueError:
        return False
    return p.scheme in ("http", "https") and bool(p.hostname)


def _fb(u: str) -> bool:
    host = (urlsplit(u).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _FB_HOSTS)


class _Walk:
    def __init__(self, r: EmulatorRules):
        self.r = r
        self.buttons = 0

    def text(self, s: Any, where: str, *, limit: int, macros: bool = False, breaks: bool = False) -> None:
        if not isinstance(s, str):
            raise Refusal(100, f"param {where} must be a string")
        if any("\ud800" <= c <= "\udfff" for c in s):
            raise Refusal(100, f"param {where} is not valid UTF-8")
        if _len(s) > limit:
            raise Refusal(100, f"param {where} must be at most {limit} characters long")
        if breaks and _breaks(s) > self.r.line_breaks_max:
            raise Refusal(2300073)
        for m in _MACRO.finditer(s):
            if not macros or m.group(1) not in MACROS:
                raise Refusal(2300038)

    def message(self, m: Any) -> None:
        if not isinstance(m, dict) or ("text" in m) == ("attachment" in m) \
                or set(m) - {"text", "attachment", "quick_replies"}:
            raise Refusal(2300010)
        if "text" in m:
            if not isinstance(m["text"], str) or not m["text"].strip():
                raise Refusal(2300076)
            self.text(m["text"], "message[text]", limit=self.r.text_max, breaks=True)
        else:
            self.attachment(m["attachment"])
        if "quick_replies" in m:
            qrs = m["quick_replies"]
            if not isinstance(qrs, list) or len(qrs) > self.r.quick_replies_max:
                raise Refusal(100, f"param message[quick_replies] must be an array of at most "
                                   f"{self.r.quick_replies_max} items")
        if self.buttons > self.r.buttons_per_message_max:
            raise Refusal(2300026)

    def attachment(self, a: Any) -> None:
        if not isinstance(a, dict) or a.get("type") != "template" or not isinstance(a.get("payload"), dict):
            raise Refusal(2300010)
        p = a["payload"]
        tt = p.get("template_type")
        if tt not in TEMPLATES:
            raise Refusal(2300010)
        if tt == "generic":
            if "text" in p:
                self.text(p["text"], "message[attachment][payload][text]", limit=self.r.text_max,
                          macros=True, breaks=True)
            els = p.get("elements")
            if not isinstance(els, list) or not els:
                raise Refusal(2300076)
            if len(els) > self.r.cards_max:
                raise Refusal(100, f"param elements must be an array of at most {self.r.cards_max} items")
            for el in els:
                self.card(el, carousel=len(els) > 1)
        elif tt == "button":
            if not isinstance(p.get("text"), str) or not p["text"].strip():
                raise Refusal(2300076)
            self.text(p["text"], "message[attachment][payload][text]", limit=self.r.text_max, breaks=True)
            bs = p.get("buttons")
            if not isinstance(bs, list) or not bs:
                raise Refusal(2300076)
            self.button_list(bs, video=False)
        elif tt == "media":
            els = p.get("elements")
            if not isinstance(els, list) or len(els) != 1 or not isinstance(els[0], dict):
                raise Refusal(2300010)
            el = els[0]
            if el.get("media_type") not in ("image", "video"):
                raise Refusal(2300010)
            has_id, url = el.get("attachment_id") not in (None, ""), el.get("url")
            if not has_id:
                if not _url_ok(url) or not _fb(url):
                    raise Refusal(2300077)
            if "buttons" in el:
                self.button_list(el["buttons"], video=el.get("media_type") == "video")

    def card(self, el: Any, *, carousel: bool) -> None:
        if not isinstance(el, dict):
            raise Refusal(2300010)
        title = el.get("title")
        if not isinstance(title, str) or not title.strip():
            raise Refusal(2300076)
        self.text(title, "title", limit=self.r.title_max, macros=True)
        if "subtitle" in el:
            self.text(el["subtitle"], "subtitle", limit=self.r.subtitle_max, macros=True)
        media = el.get("media_type", "image")      # Meta's documented default
        if media not in ("image", "video"):
            raise Refusal(2300010)
        if "image_urls" in el:
            if carousel:
                raise Refusal(2300046)
            if "image_url" in el:
                raise Refusal(2300047)
            imgs = el["image_urls"]
            if not isinstance(imgs, list) or not imgs or len(imgs) > self.r.images_max:
                raise Refusal(100, f"param image_urls must be an array of 1-{self.r.images_max} images")
            if sum(1 for i in imgs if isinstance(i, dict) and i.get("is_hero_image") in (True, "true")) > 1:
                raise Refusal(2300048)
            for i in imgs:
                if not isinstance(i, dict) or not _url_ok(i.get("url")):
                    raise Refusal(2300077)
        if media == "video" and el.get("video_id") in (None, ""):
            raise Refusal(2300021)
        if media == "image" and el.get("image_url") in (None, "") and not el.get("image_urls"):
            raise Refusal(2300022)
        if el.get("image_url") not in (None, "") and not _url_ok(el["image_url"]):
            raise Refusal(2300077)
        if "buttons" in el:
            self.button_list(el["buttons"], video=media == "video")

    def button_list(self, bs: Any, *, video: bool) -> None:
        if not isinstance(bs, list):
            raise Refusal(2300010)
        if len(bs) > self.r.buttons_max:
            raise Refusal(2300026)
        self.buttons += len(bs)
        for b in bs:
            if not isinstance(b, dict):
                raise Refusal(2300010)
            t = b.get("type")
            if t not in self.r.button_types or (video and t == "postback"):
                raise Refusal(2300023)
            if not isinstance(b.get("title"), str) or not b["title"].strip():
                raise Refusal(2300025)
            self.text(b["title"], "title", limit=self.r.button_title_max)
            if t == "web_url":
                if b.get("url") in (None, ""):
                    raise Refusal(2300024)
                if not _url_ok(b["url"]):
                    raise Refusal(2300077)
            elif t == "postback":
                if not isinstance(b.get("payload"), str) or not b["payload"]:
                    raise Refusal(2300076)
                if _len(b["payload"]) > self.r.payload_max:
                    raise Refusal(100, f"param payload must be at most {self.r.payload_max} characters long")


def check_message(message: Any, rules: EmulatorRules) -> Refusal | None:
    """The refusal Meta documents for this `message`, or None when it is acceptable."""
    try:
        _Walk(rules).message(message)
    except Refusal as r:
        return r
    return None


# ------------------------------------------------------------------------------- budgets
def account_day(t: float, tz: str) -> int:
    """The ad account's local calendar day (proleptic ordinal): the daily budget resets at its midnight."""
    return datetime.fromtimestamp(t, _zone(tz)).date().toordinal()


def account_week(t: float, tz: str) -> int:
    """The Sunday-Saturday week (in the account's zone) the weekly 7x cap counts over."""
    d = datetime.fromtimestamp(t, _zone(tz)).date()
    sunday = d - timedelta(days=(d.weekday() + 1) % 7)
    return sunday.toordinal()


def _zone(tz: str):
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def daily_budget_allows(daily: int, spent_today: int, spent_this_week: int, cost: int,
                        rules: EmulatorRules) -> bool:
    """Daily budgets are an average: one day may reach +overspend %, a week 7x (Meta's MM send-messages
    page)."""
    day_cap = daily * (100 + rules.overspend_percent) // 100
    week_cap = daily * rules.weekly_multiple
    return spent_today + cost <= day_cap and spent_this_week + cost <= week_cap


def check_budgets(daily: int | None, lifetime: int | None, currency: str, rules: EmulatorRules) -> None:
    """Minimum daily budget per currency; lifetime minimum = daily minimum x lifetime_min_days."""
    low = rules.min_daily(currency)
    if low is None:
        return
    if daily is not None and daily < low:
        raise Refusal(100, f"Invalid parameter: daily_budget {daily} is below the minimum daily budget "
                           f"of {low} ({currency} minor units) for this ad account")
    if lifetime is not None and lifetime < low * rules.lifetime_min_days:
        raise Refusal(100, f"Invalid parameter: lifetime_budget {lifetime} is below the minimum lifetime "
                           f"budget of {low * rules.lifetime_min_days} ({currency} minor units: "
                           f"{low} a day x {rules.lifetime_min_days} days)")
